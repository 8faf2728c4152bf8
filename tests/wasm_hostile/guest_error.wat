;; the guest reports its own failure with {"error": ...}
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"error\":\"cannot handle this input\"}")
  (func (export "profscope_abi_v1"))
  (func (export "psp_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "psp_analyze") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 36) (i64.const 32)) (i64.const 16))))
