package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const fixtureRoot = "internal/hostid/testdata/root-debian"

func TestScanJSONFromFixtureRoot(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"scan", "--json", "--root", fixtureRoot}, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	var sn agentv1.HostSnapshot
	if err := protojson.Unmarshal(out.Bytes(), &sn); err != nil {
		t.Fatalf("scan --json is not protojson of HostSnapshot: %v\n%s", err, out.String())
	}
	id := sn.GetIdentity()
	if id.GetHostname() != "deb-laptop-042" || id.GetSerialNumber() != "7XK2LM3" || id.GetAgentVersion() != version {
		t.Fatalf("identity %v", id)
	}
	if len(sn.GetSignals()) == 0 || sn.GetSignals()[0].GetState() != agentv1.SignalStatus_STATE_OK {
		t.Fatalf("signals %v", sn.GetSignals())
	}
}

func TestScanTable(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"scan", "--root", fixtureRoot}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hostname", "deb-laptop-042", "7XK2LM3", "identity"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"scan", "extra"}, {"run", "--config", "/nonexistent/agent.yaml", "--once"}, {"run", "--once", "--service"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
