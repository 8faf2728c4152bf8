;; psp_analyze never returns: timeout (wall clock) or out_of_fuel, whichever comes first
(module
  (memory (export "memory") 1)
  (func (export "profscope_abi_v1"))
  (func (export "psp_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "psp_analyze") (param i32 i32) (result i64)
    (loop $spin (br $spin))
    (i64.const 0)))
