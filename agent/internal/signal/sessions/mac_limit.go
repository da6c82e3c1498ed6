package sessions

import "io"

// macLimitedWriter keeps the first n bytes written and discards the rest
// without failing the writer (so a chatty child process is not killed by
// EPIPE).
type macLimitedWriter struct {
	w io.Writer
	n int64
}

func (l *macLimitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(int64(len(p)), l.n)
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
		l.n -= k
	}
	return len(p), nil
}
