package wagi

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// siteFile is what statInRoot learns about a path under the site root.
type siteFile struct {
	info fs.FileInfo
	// real is the path with symlinks resolved: the path itself when none was involved.
	real string
	// inside is false when a symlink leads out of the root: neither a module to run nor a
	// file of the site, whatever the lexical path says.
	inside bool
}

// statInRoot stats full, a path lexically under root (as caddyhttp.SanitizedPathJoin makes
// it), and tells whether it stays inside root once symlinks are resolved. Without symlinks
// below root (the common case) it costs one Lstat per path component below root; only
// when one is met are both real paths resolved and compared. Symlinks above root (a root
// that is itself a symlink, as in atomic deploys) do not count.
func statInRoot(root, full string) (siteFile, error) {
	start, ok := belowRoot(root, full)
	if !ok {
		return statResolved(root, full)
	}
	var info fs.FileInfo
	for start < len(full) {
		end := len(full)
		if k := strings.IndexByte(full[start:], filepath.Separator); k >= 0 {
			end = start + k
		}
		if end > start {
			fi, err := os.Lstat(full[:end])
			if err != nil {
				return siteFile{}, err
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return statResolved(root, full)
			}
			info = fi
		}
		start = end + 1
	}
	if info == nil {
		fi, err := os.Stat(root)
		if err != nil {
			return siteFile{}, err
		}
		info = fi
	}
	if strings.HasSuffix(full, string(filepath.Separator)) && !info.IsDir() {
		// As os.Stat says of "file/".
		return siteFile{}, &fs.PathError{Op: "stat", Path: full, Err: syscall.ENOTDIR}
	}
	return siteFile{info: info, real: full, inside: true}, nil
}

// belowRoot returns the offset in full where the part below root starts, or false if full
// is not lexically under root.
func belowRoot(root, full string) (int, bool) {
	if !strings.HasPrefix(full, root) {
		return 0, false
	}
	switch {
	case len(full) == len(root) || strings.HasSuffix(root, string(filepath.Separator)):
		return len(root), true
	case full[len(root)] == filepath.Separator:
		return len(root) + 1, true
	}
	return 0, false
}

// statResolved resolves every symlink in full and root and compares the results.
func statResolved(root, full string) (siteFile, error) {
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return siteFile{}, err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return siteFile{}, err
	}
	info, err := os.Stat(real)
	if err != nil {
		return siteFile{}, err
	}
	return siteFile{info: info, real: real, inside: within(realRoot, real)}, nil
}

// within reports whether p is dir or lies lexically under it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(rel)
}
