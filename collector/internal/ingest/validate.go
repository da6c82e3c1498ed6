package ingest

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits on what one message may hold. Everything an agent sends is
// untrusted; these caps keep one forged report from costing the collector
// more than a bounded amount of memory, storage and rule-evaluation time
// (the rules' static cost bounds rely on a snapshot's, see
// detect.MaxSnapshotList).
const (
	MaxMessageBytes   = 4 << 20 // whole gRPC message (gRPC answers ResourceExhausted)
	MaxReportsPerCall = 100
	maxString         = detect.MaxSnapshotString // bytes in any string field
	maxBytesField     = detect.MaxSnapshotBytes  // bytes in any bytes field (EDID, CSR)
	maxList           = detect.MaxSnapshotList   // entries in any repeated field
	maxElements       = 200000                   // entries over all repeated fields of one message
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
	v := validator{latest: now.Add(maxFuture)}
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
	latest   time.Time // the latest timestamp accepted
	elements int
}

// A plan is what validating a message of one Go type needs to know of its
// fields, worked out once per type instead of once per message. The walk
// reads the generated struct's fields with package reflect rather than
// through protoreflect: protoreflect's Has and Get cost more than the
// checks (a reflect.NewAt per scalar field, a heap wrapper per list), and
// most fields (numbers, booleans) need no check at all and are left out.
type plan struct {
	special specialType
	fields  []fieldPlan
	unknown int // the Go struct field holding unknown fields
}

type specialType int

const (
	plainMessage specialType = iota
	timestampMessage
	durationMessage
)

// fieldPlan is one field of a plan, or one oneof (members set): the member
// set is checked where protoreflect's Range visits it, at the oneof's
// place.
type fieldPlan struct {
	index       int // of the Go struct field (a oneof's interface field; 0 in a oneof wrapper)
	list, isMap bool
	kind        protoreflect.Kind
	maxString   int
	enum        protoreflect.EnumValueDescriptors
	msg         *plan
	name        string
	members     []memberPlan
}

// memberPlan is a oneof's field: its wrapper type and where in it the
// field is.
type memberPlan struct {
	wrapper reflect.Type
	fieldPlan
}

// plans holds the plan of every message type validated so far, by Go type
// (a pointer to the generated struct).
var plans sync.Map // reflect.Type -> *plan

func planFor(m protoreflect.Message) *plan {
	t := reflect.TypeOf(m.Interface())
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p := buildPlan(t, m.Descriptor(), map[reflect.Type]*plan{})
	actual, _ := plans.LoadOrStore(t, p)
	return actual.(*plan)
}

// buildPlan makes the plan of the generated message type t (a pointer to
// its struct), described by md, and of the message types under it; seen
// breaks cycles (a message type that holds itself).
func buildPlan(t reflect.Type, md protoreflect.MessageDescriptor, seen map[reflect.Type]*plan) *plan {
	if p, ok := seen[t]; ok {
		return p
	}
	p := &plan{}
	seen[t] = p
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		p.special = timestampMessage
		return p
	case "google.protobuf.Duration":
		p.special = durationMessage
		return p
	}
	byNumber, byOneof := structFields(t.Elem())
	u, ok := t.Elem().FieldByName("unknownFields") // as protobuf-go finds it
	if !ok || u.Type.Kind() != reflect.Slice {
		panic(fmt.Sprintf("validate: %v has no unknown fields", md.FullName()))
	}
	p.unknown = u.Index[0]
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if od.Fields().Get(0) == fd {
				p.fields = append(p.fields, oneofOf(t, od, byOneof, seen))
			}
			continue
		}
		idx, ok := byNumber[fd.Number()]
		if !ok {
			panic(fmt.Sprintf("validate: %v has no Go field", fd.FullName()))
		}
		if f := fieldOf(fd, t.Elem().Field(idx).Type, idx, seen); f.checked() {
			p.fields = append(p.fields, f)
		}
	}
	return p
}

// structFields maps a generated struct's fields by field number, and its
// oneofs' interface fields by oneof name (from the struct tags).
func structFields(st reflect.Type) (byNumber map[protoreflect.FieldNumber]int, byOneof map[string]int) {
	byNumber, byOneof = map[protoreflect.FieldNumber]int{}, map[string]int{}
	for i := range st.NumField() {
		f := st.Field(i)
		if name, ok := f.Tag.Lookup("protobuf_oneof"); ok {
			byOneof[name] = i
			continue
		}
		if n, ok := tagNumber(f.Tag); ok {
			byNumber[n] = i
		}
	}
	return byNumber, byOneof
}

// tagNumber is the field number in a generated field's protobuf tag
// ("bytes,3,rep,name=devices,proto3").
func tagNumber(tag reflect.StructTag) (protoreflect.FieldNumber, bool) {
	s, ok := tag.Lookup("protobuf")
	if !ok {
		return 0, false
	}
	parts := strings.Split(s, ",")
	if len(parts) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(parts[1])
	return protoreflect.FieldNumber(n), err == nil
}

// oneofOf plans a oneof: each member's wrapper type is found by setting
// the member on a new message and looking at what the interface holds.
func oneofOf(t reflect.Type, od protoreflect.OneofDescriptor, byOneof map[string]int, seen map[reflect.Type]*plan) fieldPlan {
	idx, ok := byOneof[string(od.Name())]
	if !ok {
		panic(fmt.Sprintf("validate: oneof %v has no Go field", od.FullName()))
	}
	f := fieldPlan{index: idx}
	for j := range od.Fields().Len() {
		fd := od.Fields().Get(j)
		probe := reflect.New(t.Elem())
		m := probe.Interface().(protoreflect.ProtoMessage).ProtoReflect()
		m.Set(fd, m.NewField(fd))
		wrapper := probe.Elem().Field(idx).Elem().Type()
		f.members = append(f.members, memberPlan{wrapper: wrapper, fieldPlan: fieldOf(fd, wrapper.Elem().Field(0).Type, 0, seen)})
	}
	return f
}

func fieldOf(fd protoreflect.FieldDescriptor, gt reflect.Type, idx int, seen map[reflect.Type]*plan) fieldPlan {
	f := fieldPlan{index: idx, list: fd.IsList(), isMap: fd.IsMap(), kind: fd.Kind(), maxString: maxString, name: string(fd.Name())}
	if l, ok := fieldMaxString[fd.FullName()]; ok {
		f.maxString = l
	}
	switch f.kind {
	case protoreflect.EnumKind:
		f.enum = fd.Enum().Values()
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if !f.isMap {
			if f.list {
				gt = gt.Elem()
			}
			f.msg = buildPlan(gt, fd.Message(), seen)
		}
	}
	return f
}

// checked says whether a field outside a oneof needs a look: a single
// number or boolean is valid whatever it holds.
func (f *fieldPlan) checked() bool {
	switch f.kind {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.EnumKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return true
	}
	return f.list || f.isMap
}

func (v *validator) message(m protoreflect.Message) error {
	return v.planned(planFor(m), reflect.ValueOf(m.Interface()))
}

// planned checks the message ptr points to (a generated struct).
func (v *validator) planned(p *plan, ptr reflect.Value) error {
	switch p.special {
	case timestampMessage:
		ts := ptr.Interface().(*timestamppb.Timestamp)
		if err := ts.CheckValid(); err != nil {
			return invalid("%v", err)
		}
		t := ts.AsTime()
		if t.After(v.latest) {
			return invalid("%s is in the future", t.Format(time.RFC3339))
		}
		if t.Before(minTime) {
			return invalid("%s is before 1990", t.Format(time.RFC3339))
		}
		return nil
	case durationMessage:
		d := ptr.Interface().(*durationpb.Duration)
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return invalid("invalid duration")
		}
		return nil
	}
	st := ptr.Elem()
	if st.Field(p.unknown).Len() > 0 {
		return invalid("unknown fields")
	}
	for i := range p.fields {
		f := &p.fields[i]
		fv := st.Field(f.index)
		var err error
		if f.members == nil {
			err = v.field(f, fv)
		} else if !fv.IsNil() {
			w := fv.Elem()
			for j := range f.members {
				if m := &f.members[j]; m.wrapper == w.Type() {
					f = &m.fieldPlan
					err = v.value(f, w.Elem().Field(f.index)) // set, even to its zero value
					break
				}
			}
		}
		if err != nil {
			return within(f.name, err)
		}
	}
	return nil
}

// field checks a field outside a oneof if it is set, as protoreflect's Has
// tells: a list or map with entries, a message or explicit-presence scalar
// with a pointer, an implicit-presence scalar other than its zero value
// (an empty string or bytes field passes every check anyway).
func (v *validator) field(f *fieldPlan, fv reflect.Value) error {
	switch {
	case f.isMap:
		if fv.Len() > 0 {
			return invalid("maps are not accepted")
		}
		return nil
	case f.list:
		n := fv.Len()
		if n == 0 {
			return nil
		}
		v.elements += n
		if n > maxList {
			return invalid("%d entries, at most %d allowed", n, maxList)
		}
		if v.elements > maxElements {
			return invalid("more than %d entries in all", maxElements)
		}
		for i := range n {
			if err := v.value(f, fv.Index(i)); err != nil {
				return within(fmt.Sprintf("[%d]", i), err)
			}
		}
		return nil
	}
	switch fv.Kind() {
	case reflect.Pointer:
		if fv.IsNil() {
			return nil
		}
		if f.msg == nil {
			fv = fv.Elem() // an explicit-presence scalar
		}
	case reflect.Int32:
		if fv.Int() == 0 {
			return nil // an implicit-presence enum, unset
		}
	}
	return v.value(f, fv)
}

// value checks a value that is set: a string, bytes, an enum number or a
// pointer to a message (nil is an empty message, as protoreflect reads it).
func (v *validator) value(f *fieldPlan, fv reflect.Value) error {
	switch f.kind {
	case protoreflect.StringKind:
		s := fv.String()
		if len(s) > f.maxString {
			return invalid("%d bytes, at most %d allowed", len(s), f.maxString)
		}
		if !utf8.ValidString(s) {
			return invalid("invalid UTF-8")
		}
	case protoreflect.BytesKind:
		if n := fv.Len(); n > maxBytesField {
			return invalid("%d bytes, at most %d allowed", n, maxBytesField)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fv.IsNil() {
			fv = reflect.New(fv.Type().Elem())
		}
		return v.planned(f.msg, fv)
	case protoreflect.EnumKind:
		if n := protoreflect.EnumNumber(fv.Int()); f.enum.ByNumber(n) == nil {
			return invalid("unknown enum value %d", n)
		}
	}
	return nil
}
