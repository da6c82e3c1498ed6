package hostid

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseProcStatBootTimeFixture(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "root-debian", "proc", "stat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parseProcStatBootTime(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1732350117, 0); !got.Equal(want) {
		t.Errorf("boot time = %v, want %v", got, want)
	}
}

func TestParseProcStatBootTime(t *testing.T) {
	long := "intr " + strings.Repeat("1 ", 10000)
	for _, c := range []struct {
		name, in string
		want     int64 // 0: errNoBootTime
	}{
		{"plain", "cpu 1 2 3\nbtime 1700000000\nprocesses 9\n", 1700000000},
		{"after long line", long + "\nbtime 1700000001\n", 1700000001},
		{"no trailing newline", "btime 1700000002", 1700000002},
		// "btime" inside a long line is not the start of a line.
		{"inside long line", long + "\nbtime 5\n", 5},
		{"fragment of long line", strings.Repeat("x", 4096-6) + "btime 7\n", 0},
		{"missing", "cpu 1 2 3\n", 0},
		{"empty", "", 0},
		{"negative", "btime -5\n", 0},
		{"zero", "btime 0\n", 0},
		{"garbage", "btime soon\n", 0},
		{"too many fields", "btime 1 2\n", 0},
		{"beyond year 9999", "btime 253402300800\n", 0},
		{"prefix only", "btimex 1700000000\n", 0},
	} {
		got, err := parseProcStatBootTime(strings.NewReader(c.in))
		if c.want == 0 {
			if !errors.Is(err, errNoBootTime) {
				t.Errorf("%s: got %v, %v; want errNoBootTime", c.name, got, err)
			}
			continue
		}
		if err != nil || got.Unix() != c.want {
			t.Errorf("%s: got %v, %v; want %d", c.name, got, err, c.want)
		}
	}
}
