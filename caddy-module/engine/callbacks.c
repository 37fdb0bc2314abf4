// The callback table handed to wagi_handle: the Go functions exported in callbacks.go.
// cgo cannot declare `const` parameters on exported functions, hence the casts; the Go
// side only reads through those pointers.
#include "wagi.h"
#include "_cgo_export.h"

typedef bool (*send_head_fn)(uint64_t, uint16_t, const uint8_t *, size_t, const uint8_t *, size_t, bool);
typedef bool (*write_body_fn)(uint64_t, const uint8_t *, size_t, bool);
typedef void (*log_fn)(uint64_t, uint8_t, const uint8_t *, size_t);

const wagi_host wagi_go_host = {
    .read_body = wagiGoReadBody,
    .send_head = (send_head_fn)wagiGoSendHead,
    .write_body = (write_body_fn)wagiGoWriteBody,
    .log = (log_fn)wagiGoLog,
    .cancelled = wagiGoCancelled,
    .release_slot = wagiGoReleaseSlot,
    .set_deadline = wagiGoSetDeadline,
};
