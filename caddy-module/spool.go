package wagi

import (
	"bytes"
	"errors"
	"io"
	"os"
)

// spoolInMemory is how much of a body of unknown length is kept in memory; the rest waits
// in a temporary file, so memory does not grow with what clients upload.
const spoolInMemory = 64 << 10

// spooledBody is a request body read to its end before the guest runs: its start in
// memory, the rest in a temporary file, unlinked while open where the system allows.
type spooledBody struct {
	io.Reader
	file *os.File
	// removeOnClose names the file when it could not be unlinked while open.
	removeOnClose string
}

// Close releases the temporary file, if any; its space goes with its last descriptor.
func (b *spooledBody) Close() error {
	if b.file == nil {
		return nil
	}
	err := b.file.Close()
	if b.removeOnClose != "" {
		err = errors.Join(err, os.Remove(b.removeOnClose))
	}
	return err
}

// errSpoolWrite marks a failure to write the temporary file: the server's fault, not the
// client's.
var errSpoolWrite = errors.New("spooling request body")

// spool reads body to its end, or until limit+1 bytes show it is over the limit, and
// returns it with its length. Past spoolInMemory bytes it goes to a temporary file in
// os.TempDir(), unlinked at once so that no path through the request, not even a crash,
// leaves it behind. On error nothing is left to close.
func spool(body io.Reader, limit int64) (*spooledBody, int64, error) {
	src := io.LimitReader(body, limit+1)
	var head bytes.Buffer
	n, err := head.ReadFrom(io.LimitReader(src, spoolInMemory))
	if err != nil || n < spoolInMemory {
		return &spooledBody{Reader: &head}, n, err
	}
	f, err := os.CreateTemp("", "wagi-body-")
	if err != nil {
		return nil, 0, errors.Join(errSpoolWrite, err)
	}
	b := &spooledBody{Reader: io.MultiReader(&head, f), file: f}
	if os.Remove(f.Name()) != nil {
		b.removeOnClose = f.Name()
	}
	rest, err := io.Copy(spoolFile{f}, src)
	if err == nil {
		if _, err = f.Seek(0, io.SeekStart); err != nil {
			err = errors.Join(errSpoolWrite, err)
		}
	}
	if err != nil {
		_ = b.Close()
		return nil, 0, err
	}
	return b, n + rest, nil
}

// spoolFile tags write errors, so they are told apart from errors reading the body.
type spoolFile struct{ f *os.File }

func (s spoolFile) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	if err != nil {
		err = errors.Join(errSpoolWrite, err)
	}
	return n, err
}
