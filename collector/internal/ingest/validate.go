package ingest

import (
	"fmt"
	"sync"
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

// A plan is what validating a message of one type needs to know of its
// fields, worked out once per type instead of once per message: the
// descriptor lookups (kind, list, enum values, the full name's string cap)
// cost more than the checks.
type plan struct {
	special specialType
	fields  []fieldPlan
}

type specialType int

const (
	plainMessage specialType = iota
	timestampMessage
	durationMessage
)

// fieldPlan is one field of a plan, or one oneof (fd nil): the member set
// is checked where protoreflect's Range visits it, at the oneof's place.
type fieldPlan struct {
	fd          protoreflect.FieldDescriptor
	oneof       protoreflect.OneofDescriptor
	list, isMap bool
	kind        protoreflect.Kind
	maxString   int
	enum        protoreflect.EnumValueDescriptors
	msg         *plan
	name        string
	members     []fieldPlan // a oneof's fields
}

// plans holds the plan of every message type validated so far, by
// descriptor.
var plans sync.Map // protoreflect.MessageDescriptor -> *plan

func planFor(md protoreflect.MessageDescriptor) *plan {
	if p, ok := plans.Load(md); ok {
		return p.(*plan)
	}
	p := buildPlan(md, map[protoreflect.FullName]*plan{})
	actual, _ := plans.LoadOrStore(md, p)
	return actual.(*plan)
}

// buildPlan makes the plan of md and of the message types under it; seen
// breaks cycles (a message type that holds itself).
func buildPlan(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*plan) *plan {
	if p, ok := seen[md.FullName()]; ok {
		return p
	}
	p := &plan{}
	seen[md.FullName()] = p
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		p.special = timestampMessage
		return p
	case "google.protobuf.Duration":
		p.special = durationMessage
		return p
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if od.Fields().Get(0) == fd {
				p.fields = append(p.fields, fieldPlan{oneof: od})
			}
			continue
		}
		p.fields = append(p.fields, fieldOf(fd, seen))
	}
	for i := range p.fields {
		if od := p.fields[i].oneof; od != nil {
			for j := range od.Fields().Len() {
				p.fields[i].members = append(p.fields[i].members, fieldOf(od.Fields().Get(j), seen))
			}
		}
	}
	return p
}

func fieldOf(fd protoreflect.FieldDescriptor, seen map[protoreflect.FullName]*plan) fieldPlan {
	f := fieldPlan{fd: fd, list: fd.IsList(), isMap: fd.IsMap(), kind: fd.Kind(), maxString: maxString, name: string(fd.Name())}
	if l, ok := fieldMaxString[fd.FullName()]; ok {
		f.maxString = l
	}
	switch f.kind {
	case protoreflect.EnumKind:
		f.enum = fd.Enum().Values()
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if !f.isMap {
			f.msg = buildPlan(fd.Message(), seen)
		}
	}
	return f
}

func (v *validator) message(m protoreflect.Message) error {
	return v.planned(planFor(m.Descriptor()), m)
}

func (v *validator) planned(p *plan, m protoreflect.Message) error {
	switch p.special {
	case timestampMessage:
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
	case durationMessage:
		d := m.Interface().(*durationpb.Duration)
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return invalid("invalid duration")
		}
		return nil
	}
	if len(m.GetUnknown()) > 0 {
		return invalid("unknown fields")
	}
	for i := range p.fields {
		f := &p.fields[i]
		if f.oneof != nil {
			fd := m.WhichOneof(f.oneof)
			if fd == nil {
				continue
			}
			for j := range f.members {
				if f.members[j].fd == fd {
					f = &f.members[j]
					break
				}
			}
		} else if !m.Has(f.fd) {
			continue
		}
		if err := v.field(f, m); err != nil {
			return within(f.name, err)
		}
	}
	return nil
}

func (v *validator) field(f *fieldPlan, m protoreflect.Message) error {
	switch {
	case f.isMap:
		return invalid("maps are not accepted")
	case f.list:
		l := m.Get(f.fd).List()
		n := l.Len()
		v.elements += n
		if n > maxList {
			return invalid("%d entries, at most %d allowed", n, maxList)
		}
		if v.elements > maxElements {
			return invalid("more than %d entries in all", maxElements)
		}
		for i := range n {
			if err := v.value(f, l.Get(i)); err != nil {
				return within(fmt.Sprintf("[%d]", i), err)
			}
		}
		return nil
	}
	return v.value(f, m.Get(f.fd))
}

func (v *validator) value(f *fieldPlan, val protoreflect.Value) error {
	switch f.kind {
	case protoreflect.StringKind:
		s := val.String()
		if len(s) > f.maxString {
			return invalid("%d bytes, at most %d allowed", len(s), f.maxString)
		}
		if !utf8.ValidString(s) {
			return invalid("invalid UTF-8")
		}
	case protoreflect.BytesKind:
		if n := len(val.Bytes()); n > maxBytesField {
			return invalid("%d bytes, at most %d allowed", n, maxBytesField)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return v.planned(f.msg, val.Message())
	case protoreflect.EnumKind:
		if f.enum.ByNumber(val.Enum()) == nil {
			return invalid("unknown enum value %d", val.Enum())
		}
	}
	return nil
}
