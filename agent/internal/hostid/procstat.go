package hostid

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// maxProcStatSize bounds how much of /proc/stat is read. The file grows with
// the number of CPUs and interrupts; btime comes after the long "intr" line.
const maxProcStatSize = 16 << 20

// maxUnixSeconds is 9999-12-31T23:59:59Z, the last instant a
// google.protobuf.Timestamp can hold.
const maxUnixSeconds = 253402300799

// errNoBootTime is returned when /proc/stat has no usable btime line.
var errNoBootTime = errors.New("no btime line")

// parseProcStatBootTime returns the boot time from the "btime" line of
// /proc/stat (seconds since the epoch, proc_stat(5)). Lines of any length
// are skipped without being buffered whole.
func parseProcStatBootTime(r io.Reader) (time.Time, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxProcStatSize), 4096)
	atLineStart := true
	for {
		chunk, err := br.ReadSlice('\n')
		complete := !errors.Is(err, bufio.ErrBufferFull)
		if atLineStart && complete {
			if t, ok := btimeLine(chunk); ok {
				return t, nil
			}
		}
		atLineStart = complete
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return time.Time{}, errNoBootTime
		default:
			return time.Time{}, fmt.Errorf("read /proc/stat: %w", err)
		}
	}
}

func btimeLine(line []byte) (time.Time, bool) {
	fields := bytes.Fields(line)
	if len(fields) != 2 || string(fields[0]) != "btime" {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil || sec <= 0 || sec > maxUnixSeconds {
		return time.Time{}, false
	}
	return time.Unix(sec, 0).UTC(), true
}
