package wagi

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
)

func TestSpool(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for _, size := range []int{0, 1000, spoolInMemory - 1, spoolInMemory, spoolInMemory + 1, 3 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		b, n, err := spool(bytes.NewReader(data), 4<<20)
		if err != nil || n != int64(size) {
			t.Fatalf("%d bytes: n=%d err=%v", size, n, err)
		}
		if (b.file != nil) != (size >= spoolInMemory) {
			t.Errorf("%d bytes: spooled to a file: %v", size, b.file != nil)
		}
		if b.file != nil {
			info, err := b.file.Stat()
			if err != nil || info.Sys().(*syscall.Stat_t).Nlink != 0 {
				t.Errorf("%d bytes: temporary file still linked (%v)", size, err)
			}
		}
		got, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: read back %d bytes, err %v", size, len(got), err)
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}
	// Over the limit: the count says so, at most one byte past it.
	b, n, err := spool(bytes.NewReader(make([]byte, 1<<20)), 200<<10)
	if err != nil || n != 200<<10+1 {
		t.Fatalf("over the limit: n=%d err=%v", n, err)
	}
	b.Close()
	// A client that breaks off: an error, and nothing left to close.
	broken := io.MultiReader(bytes.NewReader(make([]byte, 300<<10)), errReader{})
	if b, _, err := spool(broken, 4<<20); err == nil || b != nil || errors.Is(err, errSpoolWrite) {
		t.Errorf("broken body: %v %v", b, err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("left in TMPDIR: %v", entries)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
