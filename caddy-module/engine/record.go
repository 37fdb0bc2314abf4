package engine

/*
#include "wagi.h"
*/
import "C"

import (
	"encoding/binary"
	"strconv"
)

// Field is a tag of the request record; the values are wagi.h's wagi_field.
type Field byte

// Request record fields, with their meaning documented in wagi.h.
const (
	FieldModulePath     Field = C.WAGI_FIELD_MODULE_PATH
	FieldMethod         Field = C.WAGI_FIELD_METHOD
	FieldRequestURI     Field = C.WAGI_FIELD_REQUEST_URI
	FieldQueryString    Field = C.WAGI_FIELD_QUERY_STRING
	FieldProtocol       Field = C.WAGI_FIELD_PROTOCOL
	FieldHost           Field = C.WAGI_FIELD_HOST
	FieldRemoteAddr     Field = C.WAGI_FIELD_REMOTE_ADDR
	FieldTLSProtocol    Field = C.WAGI_FIELD_TLS_PROTOCOL
	FieldHeader         Field = C.WAGI_FIELD_HEADER
	FieldContentLength  Field = C.WAGI_FIELD_CONTENT_LENGTH
	FieldServerSoftware Field = C.WAGI_FIELD_SERVER_SOFTWARE
	FieldDocumentRoot   Field = C.WAGI_FIELD_DOCUMENT_ROOT
	FieldScriptName     Field = C.WAGI_FIELD_SCRIPT_NAME
	FieldScriptFilename Field = C.WAGI_FIELD_SCRIPT_FILENAME
	FieldPathInfo       Field = C.WAGI_FIELD_PATH_INFO
	FieldEnv            Field = C.WAGI_FIELD_ENV
	FieldMountRO        Field = C.WAGI_FIELD_MOUNT_RO
	FieldMountRW        Field = C.WAGI_FIELD_MOUNT_RW
	FieldTimeoutMs      Field = C.WAGI_FIELD_TIMEOUT_MS
	FieldMemoryBytes    Field = C.WAGI_FIELD_MEMORY_BYTES
	FieldCacheDir       Field = C.WAGI_FIELD_CACHE_DIR
	FieldKeepaliveMs    Field = C.WAGI_FIELD_KEEPALIVE_MS
	FieldMode           Field = C.WAGI_FIELD_MODE
	FieldInstances      Field = C.WAGI_FIELD_INSTANCES
	FieldServerAddr     Field = C.WAGI_FIELD_SERVER_ADDR
	FieldRemoteUser     Field = C.WAGI_FIELD_REMOTE_USER
	FieldTLSCipher      Field = C.WAGI_FIELD_TLS_CIPHER
	FieldTrustedProxy   Field = C.WAGI_FIELD_TRUSTED_PROXY
	FieldSiteEnv        Field = C.WAGI_FIELD_SITE_ENV
	FieldCacheMaxAgeMs  Field = C.WAGI_FIELD_CACHE_MAX_AGE_MS
	FieldArg            Field = C.WAGI_FIELD_ARG
	FieldSiteArg        Field = C.WAGI_FIELD_SITE_ARG
	FieldEntrypoint     Field = C.WAGI_FIELD_ENTRYPOINT
	FieldStderr         Field = C.WAGI_FIELD_STDERR

	FieldNetAllow            Field = C.WAGI_FIELD_NET_ALLOW
	FieldNetDeny             Field = C.WAGI_FIELD_NET_DENY
	FieldNetWasi             Field = C.WAGI_FIELD_NET_WASI
	FieldNetMaxConnections   Field = C.WAGI_FIELD_NET_MAX_CONNECTIONS
	FieldNetConnectTimeoutMs Field = C.WAGI_FIELD_NET_CONNECT_TIMEOUT_MS
	FieldNetBufferBytes      Field = C.WAGI_FIELD_NET_BUFFER_BYTES
	FieldNetCAFile           Field = C.WAGI_FIELD_NET_CA_FILE
	FieldModuleIdentity      Field = C.WAGI_FIELD_MODULE_IDENTITY
)

// Record is a request record under construction: tagged fields of length-prefixed strings,
// one flat buffer so that a single pointer without Go pointers inside crosses into C.
type Record struct {
	buf []byte
}

// Reset empties the record, keeping its buffer.
func (r *Record) Reset() { r.buf = r.buf[:0] }

// Add appends a field with one string.
func (r *Record) Add(f Field, value string) {
	r.buf = append(r.buf, byte(f))
	r.str(value)
}

// Add2 appends a field with two strings (header, env, site env, mounts).
func (r *Record) Add2(f Field, a, b string) {
	r.buf = append(r.buf, byte(f))
	r.str(a)
	r.str(b)
}

// AddInt appends a field holding a decimal number.
func (r *Record) AddInt(f Field, n int64) {
	r.buf = append(r.buf, byte(f))
	decimal(r, strconv.AppendInt, n)
}

// AddModuleIdentity appends the identity of the module file as the server just stat'ed
// it (device, inode, size, modification and change time in nanoseconds), so the engine
// does not stat it again.
func (r *Record) AddModuleIdentity(dev, ino uint64, size, mtimeNs, ctimeNs int64) {
	r.buf = append(r.buf, byte(FieldModuleIdentity))
	decimal(r, strconv.AppendUint, dev)
	decimal(r, strconv.AppendUint, ino)
	decimal(r, strconv.AppendInt, size)
	decimal(r, strconv.AppendInt, mtimeNs)
	decimal(r, strconv.AppendInt, ctimeNs)
}

// decimal appends n as a decimal string, formatted in place.
func decimal[N int64 | uint64](r *Record, format func([]byte, N, int) []byte, n N) {
	at := len(r.buf)
	r.buf = format(binary.LittleEndian.AppendUint32(r.buf, 0), n, 10)
	binary.LittleEndian.PutUint32(r.buf[at:], uint32(len(r.buf)-at-4))
}

func (r *Record) str(s string) {
	r.buf = binary.LittleEndian.AppendUint32(r.buf, uint32(len(s)))
	r.buf = append(r.buf, s...)
}
