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
)

var minTime = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// validate checks every field of m: strings are valid UTF-8 and bounded,
// bytes and lists are bounded, timestamps and durations are well formed and
// timestamps are not far in the future. The error names the field path.
func validate(m protoreflect.Message, now time.Time) error {
	v := validator{now: now}
	return v.message(m, string(m.Descriptor().Name()))
}

type validator struct {
	now      time.Time
	elements int
}

func (v *validator) message(m protoreflect.Message, path string) error {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		ts := m.Interface().(*timestamppb.Timestamp)
		if err := ts.CheckValid(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		t := ts.AsTime()
		if t.After(v.now.Add(maxFuture)) {
			return fmt.Errorf("%s: %s is in the future", path, t.Format(time.RFC3339))
		}
		if t.Before(minTime) {
			return fmt.Errorf("%s: %s is before 1990", path, t.Format(time.RFC3339))
		}
		return nil
	case "google.protobuf.Duration":
		d := m.Interface().(*durationpb.Duration)
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return fmt.Errorf("%s: invalid duration", path)
		}
		return nil
	}
	if len(m.GetUnknown()) > 0 {
		return fmt.Errorf("%s: unknown fields", path)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := val.List()
			v.elements += l.Len()
			if l.Len() > maxList {
				err = fmt.Errorf("%s: %d entries, at most %d allowed", p, l.Len(), maxList)
				return false
			}
			if v.elements > maxElements {
				err = fmt.Errorf("%s: more than %d entries in all", p, maxElements)
				return false
			}
			for i := 0; i < l.Len() && err == nil; i++ {
				err = v.value(fd, l.Get(i), fmt.Sprintf("%s[%d]", p, i))
			}
		case fd.IsMap():
			err = fmt.Errorf("%s: maps are not accepted", p)
		default:
			err = v.value(fd, val, p)
		}
		return err == nil
	})
	return err
}

func (v *validator) value(fd protoreflect.FieldDescriptor, val protoreflect.Value, path string) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := val.String()
		if len(s) > maxString {
			return fmt.Errorf("%s: %d bytes, at most %d allowed", path, len(s), maxString)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("%s: invalid UTF-8", path)
		}
	case protoreflect.BytesKind:
		if n := len(val.Bytes()); n > maxBytesField {
			return fmt.Errorf("%s: %d bytes, at most %d allowed", path, n, maxBytesField)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return v.message(val.Message(), path)
	case protoreflect.EnumKind:
		if fd.Enum().Values().ByNumber(val.Enum()) == nil {
			return fmt.Errorf("%s: unknown enum value %d", path, val.Enum())
		}
	}
	return nil
}
