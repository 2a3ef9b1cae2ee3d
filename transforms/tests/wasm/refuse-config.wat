;; A module that takes no configuration: `configure` refuses any `config.*` key (JSON longer than "{}").
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "this module takes no config.* keys")
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "configure") (param $ptr i32) (param $len i32) (result i32)
    (i32.gt_u (local.get $len) (i32.const 2)))
  (func (export "transform") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "last_error") (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 34)))
)
