package locale

import (
	"testing"
	"time"
)

// tzifFor returns TZif data for name, written from the rules of Go's
// zone database: a version-2 file with no transitions whose footer is the
// POSIX TZ string of the zone's current offset.
func tzifFor(t *testing.T, name string) []byte {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	abbr, off := testNow.In(loc).Zone()
	// One local time type; v1 block with 0 transitions, then v2 block.
	block := func() []byte {
		b := []byte("TZif2")
		b = append(b, make([]byte, 15)...)
		counts := []uint32{0, 0, 0, 0, 1, uint32(len(abbr) + 1)} // isutcnt isstdcnt leapcnt timecnt typecnt charcnt
		for _, c := range counts {
			b = append(b, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
		}
		o := uint32(int32(off))
		b = append(b, byte(o>>24), byte(o>>16), byte(o>>8), byte(o), 0, 0)
		b = append(b, abbr...)
		return append(b, 0)
	}
	data := append(block(), block()...)
	sign := "-"
	if off < 0 {
		sign, off = "", -off
	}
	data = append(data, []byte("\n<"+abbr+">"+sign+itoa(off/3600)+"\n")...)
	return data
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for i > 0 {
		s = string(rune('0'+i%10)) + s
		i /= 10
	}
	return s
}

func TestWinZonesResolve(t *testing.T) {
	if len(winZones) < 135 {
		t.Errorf("winZones has %d entries, want the full CLDR 001 set", len(winZones))
	}
	for win, iana := range winZones {
		if _, ok := zoneOffset(iana, testNow); !ok {
			t.Errorf("%q → %q does not load", win, iana)
		}
	}
	for win, want := range map[string]int32{
		"Korea Standard Time":       32400,
		"North Korea Standard Time": 32400,
		"China Standard Time":       28800,
		"Eastern Standard Time":     -18000,
		"India Standard Time":       19800,
		"UTC":                       0,
	} {
		off, ok := zoneOffset(winZones[win], testNow)
		if !ok || off != want {
			t.Errorf("%s: offset %d %v, want %d", win, off, ok, want)
		}
	}
}
