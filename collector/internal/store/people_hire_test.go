package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestPeopleHireDate: the HR export's optional hire_date is validated as
// an ISO date, stored and read back; a bad one refuses its row only.
func TestPeopleHireDate(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := storetest.Open(t, dsn)
		csv := "email,name,device_serial,hire_date\n" +
			"ana@example.com,Ana,SN-1,2026-11-20\n" +
			"ben@example.com,Ben,SN-2,\n" +
			"cy@example.com,Cy,SN-3,20/11/2026\n" +
			"dee@example.com,Dee,SN-4,2026-02-30\n" +
			"eve@example.com,Eve,SN-5,1900-01-01\n"
		n, rowErrs, err := st.ImportPeople(ctx, strings.NewReader(csv), "test")
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || len(rowErrs) != 3 {
			t.Fatalf("imported %d, refused %+v", n, rowErrs)
		}
		for i, line := range []int{4, 5, 6} {
			if rowErrs[i].Line != line || !strings.Contains(rowErrs[i].Err, "hire_date") {
				t.Errorf("row error %d: %+v, want line %d about hire_date", i, rowErrs[i], line)
			}
		}
		ana, err := st.GetPerson(ctx, "ana@example.com")
		if err != nil || ana.HireDate != "2026-11-20" {
			t.Fatalf("ana %+v %v", ana, err)
		}
		ben, err := st.GetPerson(ctx, "ben@example.com")
		if err != nil || ben.HireDate != "" {
			t.Fatalf("ben %+v %v", ben, err)
		}
	})
}
