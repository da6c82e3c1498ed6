package ui

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The device page is bounded whatever an agent sends (a hostile one sends
// snapshots of thousands of entries): the facts and each snapshot diffed
// show at most pageListRows entries of any list, and each snapshot at
// most timelineChanges changes.
const (
	pageListRows     = 100
	timelineChanges  = 100
	pageListsTrimmed = "entries of this snapshot not shown (the device page shows at most %d of any list; GET /api/v1/devices/{id} has the snapshot in full)"
)

// trimLists cuts every repeated field of m, at any depth, to max entries
// and returns how many entries it dropped.
func trimLists(m protoreflect.Message, max int) int {
	dropped := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			if l.Len() > max {
				dropped += l.Len() - max
				l.Truncate(max)
			}
			if fd.Message() != nil {
				for i := range l.Len() {
					dropped += trimLists(l.Get(i).Message(), max)
				}
			}
		case fd.IsMap():
		case fd.Message() != nil:
			dropped += trimLists(v.Message(), max)
		}
		return true
	})
	return dropped
}

// capChanges keeps the first max changes of one snapshot's diff and says
// how many more there were.
func capChanges(cs []timelineEvent, max int) []timelineEvent {
	if len(cs) <= max {
		return cs
	}
	return append(cs[:max:max], timelineEvent{Family: "snapshot", Text: fmt.Sprintf("… and %d more changes in this snapshot", len(cs)-max)})
}
