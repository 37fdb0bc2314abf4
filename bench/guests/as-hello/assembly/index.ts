// A hand-written CGI response, as in the go-wagi announcement's AssemblyScript row. The
// wasi-shim config exports the top-level statements as `_start`.
import { fd_write, iovec } from "@assemblyscript/wasi-shim/assembly/bindings/wasi_snapshot_preview1";

const bytes = String.UTF8.encode("Content-Type: text/plain\r\n\r\nhello\n");
const iov = new iovec();
iov.buf = changetype<usize>(bytes);
iov.buf_len = bytes.byteLength;
fd_write(1, changetype<usize>(iov), 1, memory.data(8));
