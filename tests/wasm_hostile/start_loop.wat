;; the start function (run during instantiation) never returns
(module
  (memory (export "memory") 1)
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "profscope_abi_v1"))
  (func (export "psp_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "psp_analyze") (param i32 i32) (result i64) (i64.const 0)))
