package ingest

import (
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits on what one message may hold. Everything an agent sends is
// untrusted; these caps keep one forged report from costing the collector
// more than a bounded amount of memory, storage and rule-evaluation time.
const (
	MaxMessageBytes   = 4 << 20 // whole gRPC message (gRPC answers ResourceExhausted)
	MaxReportsPerCall = 100
	maxString         = 4096     // bytes in any string field
	maxBytesField     = 32 << 10 // bytes in any bytes field (EDID, CSR)
	maxList           = 10000    // entries in any repeated field
	maxElements       = 200000   // entries over all repeated fields of one message
	maxFuture         = 24 * time.Hour
	maxClientID       = 64 // bytes in RemoteTool.client_id (the agent sends at most 64 of [A-Za-z0-9_-])
)

// fieldMaxString are tighter caps than maxString for single fields, by
// full field name.
var fieldMaxString = map[protoreflect.FullName]int{
	"bonafide.agent.v1.RemoteTool.client_id": maxClientID,
	"bonafide.agent.v1.MediaDevice.name":     256,
	"bonafide.agent.v1.MediaDevice.kind":     16,
	"bonafide.agent.v1.MediaDevice.source":   32,
}

var minTime = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// validate checks every field of m: strings are valid UTF-8 and bounded,
// bytes and lists are bounded, timestamps and durations are well formed and
// timestamps are not far in the future. The error names the field path
// (built only on the error path: validation runs on every report).
func validate(m protoreflect.Message, now time.Time) error {
	v := validator{now: now}
	return within(string(m.Descriptor().Name()), v.message(m))
}

// fieldError is a validation failure at a field path.
type fieldError struct{ path, msg string }

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

func invalid(format string, args ...any) error { return &fieldError{msg: fmt.Sprintf(format, args...)} }

// within prefixes a field error's path with the enclosing field or index.
func within(name string, err error) error {
	fe, ok := err.(*fieldError)
	if !ok {
		return err
	}
	switch {
	case fe.path == "":
		fe.path = name
	case fe.path[0] == '[':
		fe.path = name + fe.path
	default:
		fe.path = name + "." + fe.path
	}
	return fe
}

type validator struct {
	now      time.Time
	elements int
}

func (v *validator) message(m protoreflect.Message) error {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		ts := m.Interface().(*timestamppb.Timestamp)
		if err := ts.CheckValid(); err != nil {
			return invalid("%v", err)
		}
		t := ts.AsTime()
		if t.After(v.now.Add(maxFuture)) {
			return invalid("%s is in the future", t.Format(time.RFC3339))
		}
		if t.Before(minTime) {
			return invalid("%s is before 1990", t.Format(time.RFC3339))
		}
		return nil
	case "google.protobuf.Duration":
		d := m.Interface().(*durationpb.Duration)
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return invalid("invalid duration")
		}
		return nil
	}
	if len(m.GetUnknown()) > 0 {
		return invalid("unknown fields")
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := val.List()
			v.elements += l.Len()
			if l.Len() > maxList {
				err = invalid("%d entries, at most %d allowed", l.Len(), maxList)
			} else if v.elements > maxElements {
				err = invalid("more than %d entries in all", maxElements)
			}
			for i := 0; i < l.Len() && err == nil; i++ {
				if err = v.value(fd, l.Get(i)); err != nil {
					err = within(fmt.Sprintf("[%d]", i), err)
				}
			}
		case fd.IsMap():
			err = invalid("maps are not accepted")
		default:
			err = v.value(fd, val)
		}
		if err != nil {
			err = within(string(fd.Name()), err)
		}
		return err == nil
	})
	return err
}

func (v *validator) value(fd protoreflect.FieldDescriptor, val protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := val.String()
		limit := maxString
		if l, ok := fieldMaxString[fd.FullName()]; ok {
			limit = l
		}
		if len(s) > limit {
			return invalid("%d bytes, at most %d allowed", len(s), limit)
		}
		if !utf8.ValidString(s) {
			return invalid("invalid UTF-8")
		}
	case protoreflect.BytesKind:
		if n := len(val.Bytes()); n > maxBytesField {
			return invalid("%d bytes, at most %d allowed", n, maxBytesField)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return v.message(val.Message())
	case protoreflect.EnumKind:
		if fd.Enum().Values().ByNumber(val.Enum()) == nil {
			return invalid("unknown enum value %d", val.Enum())
		}
	}
	return nil
}
