;; Rewrites a field in place: the letters of the value's "status" string are upper-cased in the record's own
;; bytes, which are handed back (the host sees the changed value and keeps everything else as it was). Records
;; without the field are handed back unchanged. Used by the benchmark as the field-rewriting module.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "\"status\":\"")

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

  ;; The offset just past the first occurrence of the $mlen bytes at $m in the $len bytes at $ptr, or -1.
  (func $find_end (param $ptr i32) (param $len i32) (param $m i32) (param $mlen i32) (result i32)
    (local $i i32) (local $j i32)
    (block $none
      (loop $outer
        (br_if $none (i32.gt_s (i32.add (local.get $i) (local.get $mlen)) (local.get $len)))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $inner
            (if (i32.eq (local.get $j) (local.get $mlen)) (then (return (i32.add (local.get $i) (local.get $mlen)))))
            (br_if $mismatch
              (i32.ne (i32.load8_u (i32.add (i32.add (local.get $ptr) (local.get $i)) (local.get $j)))
                      (i32.load8_u (i32.add (local.get $m) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i32.const -1))

  (func (export "transform") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $c i32)
    (local.set $i (call $find_end (local.get $ptr) (local.get $len) (i32.const 16) (i32.const 10)))
    (if (i32.ge_s (local.get $i) (i32.const 0))
      (then
        (block $done
          (loop $letters
            (br_if $done (i32.ge_s (local.get $i) (local.get $len)))
            (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
            (br_if $done (i32.eq (local.get $c) (i32.const 34)))
            (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
              (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $letters)))))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
)
