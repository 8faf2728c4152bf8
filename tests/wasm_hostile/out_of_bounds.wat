;; reads far outside its linear memory
(module
  (memory (export "memory") 1)
  (func (export "profscope_abi_v1"))
  (func (export "psp_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "psp_analyze") (param i32 i32) (result i64)
    (i64.load (i32.const 0x7ffffff0))))
