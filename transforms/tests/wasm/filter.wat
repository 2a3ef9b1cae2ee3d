;; ABI v1 example (docs/wasm-abi.md): drop every record whose JSON contains "DROP-ME", hand the others back
;; unchanged (the host then passes them on exactly as they came).
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "DROP-ME")
  (data (i32.const 32) "[]")

  ;; One record at a time: each alloc starts again at 1024 and grows memory when the record needs it.
  (func (export "alloc") (param $len i32) (result i32)
    (local $need i32)
    (local.set $need (i32.add (i32.const 1024) (local.get $len)))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow (i32.sub (i32.div_u (i32.add (local.get $need) (i32.const 65535)) (i32.const 65536)) (memory.size)))
              (i32.const -1))
          (then unreachable))))
    (i32.const 1024))

  ;; 1 if the $mlen bytes at $m occur in the $len bytes at $ptr.
  (func $contains (param $ptr i32) (param $len i32) (param $m i32) (param $mlen i32) (result i32)
    (local $i i32) (local $j i32)
    (block $none
      (loop $outer
        (br_if $none (i32.gt_s (i32.add (local.get $i) (local.get $mlen)) (local.get $len)))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $inner
            (if (i32.eq (local.get $j) (local.get $mlen)) (then (return (i32.const 1))))
            (br_if $mismatch
              (i32.ne (i32.load8_u (i32.add (i32.add (local.get $ptr) (local.get $i)) (local.get $j)))
                      (i32.load8_u (i32.add (local.get $m) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i32.const 0))

  ;; The answer is (ptr << 32) | len: "[]" (drop) for a marked record, else the input itself.
  (func (export "transform") (param $ptr i32) (param $len i32) (result i64)
    (if (call $contains (local.get $ptr) (local.get $len) (i32.const 16) (i32.const 7))
      (then (return (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 2)))))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
)
