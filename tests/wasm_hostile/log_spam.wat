;; calls profscope.log far more often than allowed, with a 10 KiB line full of control
;; characters, with an out-of-bounds pointer and with an unknown level; then succeeds
(module
  (import "profscope" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "line\01\02\1b[31mred\7f\0a")
  (func (export "profscope_abi_v1"))
  (func (export "psp_alloc") (param i32) (result i32) (i32.const 32768))
  (func (export "psp_analyze") (param i32 i32) (result i64)
    (local $i i32)
    (memory.fill (i32.const 8192) (i32.const 65) (i32.const 10240))   ;; 10 KiB of 'A'
    (call $log (i32.const 2) (i32.const 8192) (i32.const 10240))
    (call $log (i32.const 1) (i32.const 0xfffffff0) (i32.const 64))   ;; out of bounds
    (call $log (i32.const 99) (i32.const 16) (i32.const 16))          ;; unknown level
    (loop $spam
      (call $log (i32.const 0) (i32.const 16) (i32.const 16))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spam (i32.lt_u (local.get $i) (i32.const 1000))))
    (i64.const 0)))
