package posture

// Who installed a remote tool on Windows: Windows Installer writes event
// 1033 of source MsiInstaller to the Application log at the end of every
// install ("Windows Installer installed the product. Product Name: %1.
// Product Version: %2. Product Language: %3. Manufacturer: %5.
// Installation success or error status: %4."), with the SID of the
// account that ran the install as the event's user
// (<Security UserID="…"/>). Installers that are not MSI packages write no
// such event, so this finds MSI installs only (AnyDesk MSI, TeamViewer's
// MSI, RustDesk's MSI …). Public format: Microsoft's Event Viewer XML, as
// in the Service Fabric troubleshooting guide's capture
// (testdata/windows/SOURCES.md).

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// msiEventInstalled is MsiInstaller's "installed the product" event.
	msiEventInstalled = 1033
	// maxEventXML caps one event's XML.
	maxEventXML = 64 << 10
	// maxProduct caps a product name kept, in bytes.
	maxProduct = 256
	// msiSource is where ToolInstall.source says the install was read.
	msiSource = "Application log, MsiInstaller event 1033"
)

// msiEvent is the part of an MsiInstaller event that posture reads.
type msiEvent struct {
	ID      int
	At      time.Time
	SID     string
	Product string
	Status  string
}

// msiXML is the Event Viewer XML of one event.
type msiXML struct {
	System struct {
		Provider struct {
			Name string `xml:"Name,attr"`
		} `xml:"Provider"`
		EventID     string `xml:"EventID"`
		TimeCreated struct {
			SystemTime string `xml:"SystemTime,attr"`
		} `xml:"TimeCreated"`
		Security struct {
			UserID string `xml:"UserID,attr"`
		} `xml:"Security"`
	} `xml:"System"`
	Data []string `xml:"EventData>Data"`
}

// parseMsiEvent reads one event's XML (outside bytes: capped, strict).
func parseMsiEvent(b []byte) (msiEvent, error) {
	if len(b) > maxEventXML {
		return msiEvent{}, fmt.Errorf("posture: event XML is %d bytes, over the %d-byte cap", len(b), maxEventXML)
	}
	var x msiXML
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	// EvtRender declares no encoding and exported files say utf-8; only
	// UTF-8 reaches us, whatever the declaration names.
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := dec.Decode(&x); err != nil {
		return msiEvent{}, fmt.Errorf("posture: event XML: %w", err)
	}
	if x.System.Provider.Name != "MsiInstaller" {
		return msiEvent{}, errors.New("posture: not an MsiInstaller event")
	}
	ev := msiEvent{SID: strings.TrimSpace(x.System.Security.UserID)}
	if _, err := fmt.Sscan(strings.TrimSpace(x.System.EventID), &ev.ID); err != nil {
		return msiEvent{}, fmt.Errorf("posture: event id %q", x.System.EventID)
	}
	ev.At, _ = time.Parse(time.RFC3339Nano, strings.TrimSpace(x.System.TimeCreated.SystemTime))
	if len(x.Data) >= 4 {
		ev.Product, ev.Status = strings.TrimSpace(x.Data[0]), strings.TrimSpace(x.Data[3])
	}
	return ev, nil
}

// MsiInstalls returns the successful MSI installs (event 1033, status 0)
// of products whose name matches a tool's uninstall globs (tool id →
// globs, as the remote-access catalog's uninstall_names), oldest first,
// each with the account lookup names for the event's SID ("" when it
// has none or the SID is unknown; the SID itself is kept then).
func MsiInstalls(events [][]byte, products map[string][]string, lookup func(sid string) string) []*agentv1.ToolInstall {
	ids := make([]string, 0, len(products))
	for id := range products {
		ids = append(ids, id)
	}
	slices.Sort(ids) // one tool per product, the same one every time
	var out []*agentv1.ToolInstall
	for _, b := range events {
		ev, err := parseMsiEvent(b)
		if err != nil || ev.ID != msiEventInstalled || ev.Status != "0" || ev.Product == "" {
			continue
		}
		for _, id := range ids {
			if !slices.ContainsFunc(products[id], func(g string) bool { return policies.GlobFold(g, ev.Product) }) {
				continue
			}
			user := cmp.Or(lookup(ev.SID), ev.SID)
			user = strings.ToValidUTF8(user[:min(len(user), maxName*2)], "")
			product := strings.ToValidUTF8(ev.Product[:min(len(ev.Product), maxProduct)], "")
			in := &agentv1.ToolInstall{ToolId: id, Package: product, User: user, Source: msiSource}
			if !ev.At.IsZero() {
				in.At = timestamppb.New(ev.At)
			}
			out = append(out, in)
			break
		}
	}
	slices.SortStableFunc(out, func(a, b *agentv1.ToolInstall) int { return a.GetAt().AsTime().Compare(b.GetAt().AsTime()) })
	if len(out) > maxInstalls {
		out = out[len(out)-maxInstalls:]
	}
	return out
}
