;; wrong_tool.wat: answers {"count":"many"} whatever it is asked; its output schema says integer.
(module
  (import "plaza" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"count\":\"many\"}")
  (func (export "count") (result i32)
    (drop (call $output_write (i32.const 0) (i32.const 16)))
    (i32.const 0)))
