package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

const hrExport = `email,name,username,device_serial,country,region,city,timezone,work_hours
ana@example.com,Ana Lima,alima,SN-ANA,US,NY,New York,America/New_York,09:00-17:00
not-an-address,Bad Row,x,,US,,,America/New_York,09:00-17:00
ben@example.com,Ben Ode,bode,,US,CA,San Jose,Mars/Olympus,09:00-17:00
cy@example.com,Cy Park,cpark,sn-cy,KR,,Seoul,Asia/Seoul,25:00-17:00
"dee@example.com","Dee, Jr.",dee,SN-DEE,GB,,London,Europe/London,08:30-16:30
`

func TestPeople(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := storetest.Open(t, dsn)
		n, rowErrs, err := st.ImportPeople(ctx, strings.NewReader(hrExport), "test")
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || len(rowErrs) != 3 {
			t.Fatalf("imported %d, refused %+v", n, rowErrs)
		}
		for i, want := range []struct {
			line int
			msg  string
		}{{3, "email"}, {4, "timezone"}, {5, "work_hours"}} {
			if rowErrs[i].Line != want.line || !strings.Contains(rowErrs[i].Err, want.msg) {
				t.Errorf("row error %d: %+v, want line %d about %s", i, rowErrs[i], want.line, want.msg)
			}
		}
		people, err := st.ListPeople(ctx, "", 0)
		if err != nil || len(people) != 2 || people[0].Email != "ana@example.com" || people[1].Name != "Dee, Jr." {
			t.Fatalf("people %+v %v", people, err)
		}
		// Re-import updates by email; nothing is duplicated.
		if _, err := st.UpsertPerson(ctx, store.Person{Email: "ANA@example.com", Name: "Ana L.", DeviceSerial: "SN-ANA"}, "test"); err != nil {
			t.Fatal(err)
		}
		people, _ = st.ListPeople(ctx, "", 0)
		if len(people) != 2 || people[0].Name != "Ana L." {
			t.Fatalf("after update %+v", people)
		}
		if _, err := st.UpsertPerson(ctx, store.Person{Email: "x@example.com", WorkHours: "9-5"}, "test"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("invalid person: %v", err)
		}
		if _, _, err := st.ImportPeople(ctx, strings.NewReader("email,salary\na@b.c,1\n"), "test"); err == nil || !strings.Contains(err.Error(), "salary") {
			t.Fatalf("unknown column: %v", err)
		}

		// A device whose hardware serial is a person's device_serial is bound
		// to that person (case-insensitively).
		_, sec, _ := st.CreateSecret(ctx, "s")
		id, err := st.Enroll(ctx, store.Enrollment{AgentID: "a1", SecretID: sec.ID, HardwareKey: "hw:/sn-ana",
			Identity: store.DeviceIdentity{SerialNumber: "sn-ana", Hostname: "ana-laptop"}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := st.GetDevice(ctx, id)
		if err != nil || d.Person != "ana@example.com" || d.PersonBinding != "device_serial" {
			t.Fatalf("device %+v %v", d, err)
		}
		other, _ := st.Enroll(ctx, store.Enrollment{AgentID: "a2", SecretID: sec.ID, HardwareKey: "hw:/nobody",
			Identity: store.DeviceIdentity{SerialNumber: "NOBODY"}})
		if d, _ := st.GetDevice(ctx, other); d.Person != "" || d.PersonBinding != "" {
			t.Fatalf("unbound device %+v", d)
		}
	})
}
