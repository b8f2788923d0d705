;; echo_tool.wat: a tool that writes its input back as its output (no scopes needed).
(module
  (import "plaza" "input_len" (func $input_len (result i32)))
  (import "plaza" "input_read" (func $input_read (param i32) (result i32)))
  (import "plaza" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "echo") (result i32) (local $len i32)
    (local.set $len (call $input_len))
    (drop (call $input_read (i32.const 1024)))
    (drop (call $output_write (i32.const 1024) (local.get $len)))
    (i32.const 0)))
