;; has a memory but neither the ABI marker nor psp_alloc
(module
  (memory (export "memory") 1)
  (func (export "psp_analyze") (param i32 i32) (result i64) (i64.const 0)))
