;; kv_writer.wat: stores "seen" under the key "k" on every order: it needs the kv:write scope.
(module
  (import "plaza" "kv_set" (func $kv_set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "k\"seen\"")
  (func (export "on_order_created") (result i32)
    (drop (call $kv_set (i32.const 0) (i32.const 1) (i32.const 1) (i32.const 6)))
    (i32.const 0)))
