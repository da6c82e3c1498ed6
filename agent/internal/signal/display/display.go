package display

import (
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// FromEDID builds the Display of a connector from its raw EDID as the OS
// gives it. An EDID that cannot be decoded (no header, too short) is kept
// raw with the decoded fields empty; one over MaxSize is dropped.
func FromEDID(connector string, raw []byte) *agentv1.Display {
	e, err := ParseEDID(raw)
	if err != nil {
		d := &agentv1.Display{Connector: connector}
		if len(raw) <= MaxSize {
			d.Edid = append([]byte(nil), raw...)
		}
		return d
	}
	d := e.Proto()
	d.Connector = connector
	return d
}
