package wagi

import (
	"iter"
	"strings"
)

// splitEnds yields the offsets in reqPath where a script path may end: after a split
// extension that closes a path segment, for each extension in order, left to right.
//
// Extensions match without regard to ASCII case, on the original bytes, as Caddy's fastcgi
// transport does since its advisories: Unicode case folding changes byte lengths (U+212A
// KELVIN SIGN lower-cases to a one-byte `k`; an invalid byte to a three-byte U+FFFD), so
// offsets found in a folded copy do not point at the same place in the original.
func splitEnds(reqPath string, exts []string) iter.Seq[int] {
	return func(yield func(int) bool) {
		for _, ext := range exts {
			for from := 0; from <= len(reqPath); {
				end := len(reqPath)
				if k := strings.IndexByte(reqPath[from:], '/'); k >= 0 {
					end = from + k
				}
				if end-from >= len(ext) && ext != "" && equalASCIIFold(reqPath[end-len(ext):end], ext) {
					if !yield(end) {
						return
					}
				}
				from = end + 1
			}
		}
	}
}

// equalASCIIFold reports whether s equals lower, a lower-case ASCII string, when ASCII
// letters in s are folded to lower case. Other bytes must match exactly.
func equalASCIIFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasSuffixASCIIFold reports whether s ends in lower, as equalASCIIFold compares.
func hasSuffixASCIIFold(s, lower string) bool {
	return len(s) >= len(lower) && equalASCIIFold(s[len(s)-len(lower):], lower)
}

// lowerASCII folds only the ASCII letters of s to lower case.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// isASCII reports whether s has only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
