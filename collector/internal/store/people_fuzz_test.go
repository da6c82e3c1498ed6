package store_test

import (
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// FuzzParsePeopleCSV: the HR export parser never panics, and every person
// it returns is valid (email, country and city, time zone, work hours) and
// has its line. The seeds run as an ordinary test; `make fuzz` fuzzes.
func FuzzParsePeopleCSV(f *testing.F) {
	const header = "email,name,username,device_serial,country,region,city,timezone,work_hours\n"
	for _, seed := range []string{
		header + "ana@example.com,Ana Lima,alima,7XK2LM3,US,NY,New York,America/New_York,09:00-17:00\n",
		header + "\"ana@example.com\"x,Ana,alima,,US,,,America/New_York,09:00-17:00\n", // a quote error in a row's first field (it panicked)
		header + "ana@example.com,\"Ana\nLima\",alima,,US,,,America/New_York,09:00-17:00\n",
		header + "a\"b@example.com,Ana,,,US,,,UTC,09:00-17:00\n",
		header + "ana@example.com,Ana\n",
		header + "ana@example.com,Ana,alima,,ZZ,,Atlantis,Mars/Olympus,25:00-26:00\n",
		header + "ana@example.com,Ana,alima,,US,,,America/New_York,17:00-09:00\n",
		"\ufeffEmail,Name\nana@example.com,Ana\n",
		"email,bogus\n",
		"",
		"\"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		people, rowErrs, err := store.ParsePeopleCSV(strings.NewReader(in))
		if err != nil && len(people) > 0 {
			t.Fatalf("error %v with %d people", err, len(people))
		}
		for _, p := range people {
			if err := p.Validate(); err != nil {
				t.Fatalf("invalid person returned: %+v: %v", p.Person, err)
			}
			if p.Line < 2 {
				t.Fatalf("person %q on line %d", p.Email, p.Line)
			}
		}
		for _, re := range rowErrs {
			if re.Err == "" {
				t.Fatalf("row error without a message: %+v", re)
			}
		}
	})
}
