package ingest

import (
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// validateByRange is validate as it was before plans: each message's
// fields visited one by one and every limit looked up on the way. The
// fuzz tests check that validate agrees with it. It visits the fields as
// protoreflect's Range does, a oneof at its first field's place, but
// without the order Range perturbs on purpose in some builds (which made
// the first of several faults reported depend on the build).
func validateByRange(m protoreflect.Message, now time.Time) error {
	v := refValidator{now: now}
	return within(string(m.Descriptor().Name()), v.message(m))
}

type refValidator struct {
	now      time.Time
	elements int
}

func (v *refValidator) message(m protoreflect.Message) error {
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
	rangeFields(m, func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
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

func (v *refValidator) value(fd protoreflect.FieldDescriptor, val protoreflect.Value) error {
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

// rangeFields is m.Range in declaration order.
func rangeFields(m protoreflect.Message, f func(protoreflect.FieldDescriptor, protoreflect.Value) bool) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			i += od.Fields().Len() - 1
			if fd = m.WhichOneof(od); fd == nil {
				continue
			}
		} else if !m.Has(fd) {
			continue
		}
		if !f(fd, m.Get(fd)) {
			return
		}
	}
}
