// Package usb reads what USB devices declare about themselves. This file
// holds a pure parser for HID report descriptors: the byte string a HID
// interface returns for GET_DESCRIPTOR(Report), which Linux exposes as
// /sys/class/hidraw/*/device/report_descriptor.
//
// The parser follows the Device Class Definition for HID 1.11 (USB-IF,
// 2001), §5.2-§5.4 and §6.2.2 ("Report Descriptor": item format, main,
// global and local items, Push/Pop), and names usages from the HID Usage
// Tables (USB-IF, 1.12 onwards): Generic Desktop page 0x01, Keyboard/Keypad
// page 0x07, Button page 0x09, Consumer page 0x0C, Digitizers page 0x0D.
//
// An IP-KVM presents itself to the computer it controls as a keyboard plus
// a pointer with ABSOLUTE X/Y (the KVM knows where on the captured screen
// the operator clicked); an ordinary mouse reports RELATIVE motion. The
// descriptor declares which, so it survives spoofed vendor/product IDs.
package usb

import (
	"errors"
	"fmt"
)

// MaxReportDescriptorSize is the largest descriptor ParseReportDescriptor
// accepts. wDescriptorLength in the HID descriptor (HID 1.11 §6.2.1) is a
// 16-bit field, so no real descriptor is longer.
const MaxReportDescriptorSize = 64 << 10

// Limits that bound the parser's work and memory on hostile input.
const (
	// maxCollectionDepth is the deepest Collection nesting accepted.
	maxCollectionDepth = 64
	// maxGlobalStack is the deepest Push nesting accepted.
	maxGlobalStack = 32
	// maxLocalUsages caps the usages remembered between two main items;
	// further Usage items are ignored.
	maxLocalUsages = 1024
	// maxApplications caps the application collections recorded.
	maxApplications = 256
	// maxReportIDs caps the report ids recorded per application.
	maxReportIDs = 256
	// maxCount caps the per-item key and button counts (a keyboard page
	// has fewer than 256 usages, the button page 65535).
	maxCount = 65535
)

// Sentinel errors. ParseReportDescriptor wraps them with the offset of the
// offending item.
var (
	ErrTooLarge           = errors.New("hid report descriptor larger than 64 KiB")
	ErrTruncated          = errors.New("hid report descriptor item truncated")
	ErrPopWithoutPush     = errors.New("hid report descriptor: Pop without Push")
	ErrPushTooDeep        = errors.New("hid report descriptor: Push nesting too deep")
	ErrCollectionTooDeep  = errors.New("hid report descriptor: collection nesting too deep")
	ErrUnbalancedEnd      = errors.New("hid report descriptor: End Collection without Collection")
	ErrUnclosedCollection = errors.New("hid report descriptor: unclosed collection")
)

// Usage pages and usages from the HID Usage Tables.
const (
	PageGenericDesktop = 0x01
	PageKeyboard       = 0x07
	PageLED            = 0x08
	PageButton         = 0x09
	PageConsumer       = 0x0C
	PageDigitizer      = 0x0D

	// Generic Desktop page (HID Usage Tables §4).
	UsagePointer  = 0x01
	UsageMouse    = 0x02
	UsageJoystick = 0x04
	UsageGamepad  = 0x05
	UsageKeyboard = 0x06
	UsageKeypad   = 0x07
	UsageX        = 0x30
	UsageY        = 0x31
	UsageWheel    = 0x38

	// Consumer page (HID Usage Tables §15).
	UsageConsumerControl = 0x01
	UsageACPan           = 0x0238

	// Digitizers page (HID Usage Tables §16).
	UsageDigitizer   = 0x01
	UsagePen         = 0x02
	UsageTouchScreen = 0x04
	UsageTouchPad    = 0x05
)

// Item types (bType, HID 1.11 §6.2.2.2).
const (
	typeMain   = 0
	typeGlobal = 1
	typeLocal  = 2
)

// Main item tags (HID 1.11 §6.2.2.4).
const (
	tagInput         = 0x8
	tagOutput        = 0x9
	tagCollection    = 0xA
	tagFeature       = 0xB
	tagEndCollection = 0xC
)

// Global item tags (HID 1.11 §6.2.2.7).
const (
	tagUsagePage   = 0x0
	tagLogicalMin  = 0x1
	tagLogicalMax  = 0x2
	tagReportSize  = 0x7
	tagReportID    = 0x8
	tagReportCount = 0x9
	tagPush        = 0xA
	tagPop         = 0xB
)

// Local item tags (HID 1.11 §6.2.2.8).
const (
	tagUsage    = 0x0
	tagUsageMin = 0x1
	tagUsageMax = 0x2
)

// Collection types (HID 1.11 §6.2.2.6).
const collectionApplication = 0x01

// Input/Output/Feature data bits (HID 1.11 §6.2.2.5).
const (
	bitConstant = 1 << 0 // 0 Data, 1 Constant
	bitVariable = 1 << 1 // 0 Array, 1 Variable
	bitRelative = 1 << 2 // 0 Absolute, 1 Relative
)

// ReportDescriptor is what a HID report descriptor declares.
type ReportDescriptor struct {
	// Applications are the application collections in descriptor order,
	// nested ones included.
	Applications []Application
}

// Application is one application collection (HID 1.11 §6.2.2.6): what the
// operating system treats as one input device.
type Application struct {
	// Page and Usage name the collection, e.g. Generic Desktop (0x01) /
	// Mouse (0x02).
	Page  uint16
	Usage uint16
	// ReportIDs are the report ids its Input/Output/Feature items use, in
	// first-seen order; empty when the descriptor uses no report ids.
	ReportIDs []uint8
	// AbsoluteXY is true when Input items declare both Generic Desktop X
	// and Y as absolute; RelativeXY when both are relative.
	AbsoluteXY bool
	RelativeXY bool
	// XYLogicalMax is the largest Logical Maximum of an absolute X or Y
	// input (e.g. 32767 for the absolute mouse IP-KVMs emulate); 0 when
	// there is none.
	XYLogicalMax int64
	// Keys is the number of Keyboard/Keypad page (0x07) usages its Input
	// items declare, modifiers included; KeySlots the number of key-array
	// fields (6 for a boot keyboard).
	Keys     int
	KeySlots int
	// Buttons is the number of Button page (0x09) inputs.
	Buttons int

	absX, absY, relX, relY bool
}

// Is reports whether the application collection is page/usage.
func (a *Application) Is(page, usage uint16) bool {
	return a.Page == page && a.Usage == usage
}

// IsPointer reports whether the application is a pointing device: a
// Generic Desktop Mouse or Pointer, or any Digitizers page application
// (touch screen, pen, touch pad …).
func (a *Application) IsPointer() bool {
	switch a.Page {
	case PageGenericDesktop:
		return a.Usage == UsageMouse || a.Usage == UsagePointer
	case PageDigitizer:
		return true
	}
	return false
}

// globalState is the global item state that Push/Pop save and restore.
type globalState struct {
	usagePage  uint16
	logicalMin int64
	logicalMax int64
	// logicalMaxU is Logical Maximum read as unsigned.
	logicalMaxU int64
	reportSize  uint32
	reportCount uint32
	reportID    uint8
}

// usage is a local Usage: either a 16-bit id to be combined with the Usage
// Page in effect at the main item, or an extended 32-bit page<<16|id.
type usage struct {
	value    uint32
	extended bool
}

// usageRange is a Usage Minimum/Maximum pair.
type usageRange struct {
	min, max       usage
	hasMin, hasMax bool
}

type localState struct {
	usages []usage
	ranges []usageRange
}

func (l *localState) reset() {
	l.usages = l.usages[:0]
	l.ranges = l.ranges[:0]
}

// resolve returns the full 32-bit usage (page<<16 | id).
func (u usage) resolve(page uint16) uint32 {
	if u.extended {
		return u.value
	}
	return uint32(page)<<16 | u.value&0xFFFF
}

// ParseReportDescriptor parses a HID report descriptor. It walks short and
// long items (HID 1.11 §6.2.2.2-3), keeps the global state stack and the
// local state, and records every application collection with what its
// Input items declare.
//
// On malformed input it returns an error wrapping one of the sentinel
// errors together with a non-nil ReportDescriptor holding what was parsed
// before the problem (nil only for ErrTooLarge). Work is linear in len(b).
func ParseReportDescriptor(b []byte) (*ReportDescriptor, error) {
	if len(b) > MaxReportDescriptorSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	p := parser{rd: &ReportDescriptor{}}
	err := p.run(b)
	p.finish()
	return p.rd, err
}

type parser struct {
	rd     *ReportDescriptor
	global globalState
	stack  []globalState
	local  localState
	// collections holds, per open collection, the index in rd.Applications
	// of the innermost application collection enclosing it (-1 for none).
	collections []int
}

func (p *parser) run(b []byte) error {
	for off := 0; off < len(b); {
		prefix := b[off]
		if prefix == 0xFE {
			// Long item (HID 1.11 §6.2.2.3): 0xFE, bDataSize,
			// bLongItemTag, data. No long item tags are defined; skip.
			if off+3 > len(b) {
				return fmt.Errorf("%w: long item at offset %d", ErrTruncated, off)
			}
			n := int(b[off+1])
			if off+3+n > len(b) {
				return fmt.Errorf("%w: long item at offset %d", ErrTruncated, off)
			}
			off += 3 + n
			continue
		}
		// Short item (HID 1.11 §6.2.2.2): bTag(4) bType(2) bSize(2);
		// bSize 3 means four data bytes.
		size := int(prefix & 0x3)
		if size == 3 {
			size = 4
		}
		typ := (prefix >> 2) & 0x3
		tag := prefix >> 4
		if off+1+size > len(b) {
			return fmt.Errorf("%w: item 0x%02x at offset %d", ErrTruncated, prefix, off)
		}
		data := b[off+1 : off+1+size]
		var err error
		switch typ {
		case typeMain:
			err = p.main(tag, data)
		case typeGlobal:
			err = p.globalItem(tag, data)
		case typeLocal:
			p.localItem(tag, data)
		default:
			// bType 3 is reserved for short items; ignore.
		}
		if err != nil {
			return fmt.Errorf("%w at offset %d", err, off)
		}
		off += 1 + size
	}
	if len(p.collections) > 0 {
		return fmt.Errorf("%w: %d open at end", ErrUnclosedCollection, len(p.collections))
	}
	return nil
}

// unsigned decodes little-endian item data as an unsigned value.
func unsigned(d []byte) uint32 {
	var v uint32
	for i, c := range d {
		v |= uint32(c) << (8 * i)
	}
	return v
}

// signed decodes little-endian item data as a two's-complement value of
// the data's width (HID 1.11 §6.2.2.7: Logical Minimum/Maximum are signed).
func signed(d []byte) int64 {
	switch len(d) {
	case 1:
		return int64(int8(d[0]))
	case 2:
		return int64(int16(unsigned(d)))
	case 4:
		return int64(int32(unsigned(d)))
	}
	return 0
}

func (p *parser) globalItem(tag byte, d []byte) error {
	g := &p.global
	switch tag {
	case tagUsagePage:
		g.usagePage = uint16(unsigned(d))
	case tagLogicalMin:
		g.logicalMin = signed(d)
	case tagLogicalMax:
		g.logicalMax = signed(d)
		g.logicalMaxU = int64(unsigned(d))
	case tagReportSize:
		g.reportSize = unsigned(d)
	case tagReportID:
		g.reportID = uint8(unsigned(d))
	case tagReportCount:
		g.reportCount = unsigned(d)
	case tagPush:
		if len(p.stack) >= maxGlobalStack {
			return ErrPushTooDeep
		}
		p.stack = append(p.stack, *g)
	case tagPop:
		if len(p.stack) == 0 {
			return ErrPopWithoutPush
		}
		*g = p.stack[len(p.stack)-1]
		p.stack = p.stack[:len(p.stack)-1]
	}
	return nil
}

func (p *parser) localItem(tag byte, d []byte) {
	// HID 1.11 §6.2.2.8: a 4-byte Usage (or Usage Minimum/Maximum) is an
	// extended usage, Usage Page in the high 16 bits.
	u := usage{value: unsigned(d), extended: len(d) == 4}
	l := &p.local
	switch tag {
	case tagUsage:
		if len(l.usages) < maxLocalUsages {
			l.usages = append(l.usages, u)
		}
	case tagUsageMin:
		if n := len(l.ranges); n > 0 && !l.ranges[n-1].hasMin {
			l.ranges[n-1].min, l.ranges[n-1].hasMin = u, true
		} else if n < maxLocalUsages {
			l.ranges = append(l.ranges, usageRange{min: u, hasMin: true})
		}
	case tagUsageMax:
		if n := len(l.ranges); n > 0 && !l.ranges[n-1].hasMax {
			l.ranges[n-1].max, l.ranges[n-1].hasMax = u, true
		} else if n < maxLocalUsages {
			l.ranges = append(l.ranges, usageRange{max: u, hasMax: true})
		}
	}
	// Designators, strings and Delimiter carry nothing we use.
}

func (p *parser) main(tag byte, d []byte) error {
	defer p.local.reset() // HID 1.11 §6.2.2.8: locals end at each main item
	switch tag {
	case tagCollection:
		if len(p.collections) >= maxCollectionDepth {
			return ErrCollectionTooDeep
		}
		app := -1
		if n := len(p.collections); n > 0 {
			app = p.collections[n-1]
		}
		if len(d) > 0 && d[0] == collectionApplication && len(p.rd.Applications) < maxApplications {
			full, _ := p.firstUsage()
			p.rd.Applications = append(p.rd.Applications, Application{
				Page:  uint16(full >> 16),
				Usage: uint16(full),
			})
			app = len(p.rd.Applications) - 1
		}
		p.collections = append(p.collections, app)
	case tagEndCollection:
		if len(p.collections) == 0 {
			return ErrUnbalancedEnd
		}
		p.collections = p.collections[:len(p.collections)-1]
	case tagInput:
		if a := p.current(); a != nil {
			p.noteReportID(a)
			p.input(a, unsigned(d))
		}
	case tagOutput, tagFeature:
		if a := p.current(); a != nil {
			p.noteReportID(a)
		}
	}
	return nil
}

// firstUsage is the first local usage, which names a collection.
func (p *parser) firstUsage() (uint32, bool) {
	if len(p.local.usages) > 0 {
		return p.local.usages[0].resolve(p.global.usagePage), true
	}
	for _, r := range p.local.ranges {
		if r.hasMin {
			return r.min.resolve(p.global.usagePage), true
		}
	}
	return 0, false
}

// current is the innermost open application collection, or nil.
func (p *parser) current() *Application {
	n := len(p.collections)
	if n == 0 || p.collections[n-1] < 0 {
		return nil
	}
	return &p.rd.Applications[p.collections[n-1]]
}

func (p *parser) noteReportID(a *Application) {
	id := p.global.reportID
	if id == 0 {
		return
	}
	for _, have := range a.ReportIDs {
		if have == id {
			return
		}
	}
	if len(a.ReportIDs) < maxReportIDs {
		a.ReportIDs = append(a.ReportIDs, id)
	}
}

// input records what one Input main item declares.
func (p *parser) input(a *Application, flags uint32) {
	count := int64(p.global.reportCount)
	if flags&bitConstant != 0 || count == 0 {
		return // padding, or no fields
	}
	page := p.global.usagePage
	relative := flags&bitRelative != 0
	variable := flags&bitVariable != 0
	usages := p.local.usages
	if variable && len(p.local.ranges) == 0 && int64(len(usages)) > count {
		// HID 1.11 §6.2.2.8: a variable item has Report Count fields,
		// one per usage; usages beyond that declare nothing.
		usages = usages[:count]
	}

	// Logical Maximum is signed, but descriptors often write an unsigned
	// maximum such as 0xFFFF in two bytes; read it unsigned then.
	lmax := p.global.logicalMax
	if lmax < p.global.logicalMin {
		lmax = p.global.logicalMaxU
	}

	var keys, buttons int64
	axis := func(full uint32) {
		switch full {
		case PageGenericDesktop<<16 | UsageX, PageGenericDesktop<<16 | UsageY:
			x := full&0xFFFF == UsageX
			if relative {
				if x {
					a.relX = true
				} else {
					a.relY = true
				}
			} else {
				if x {
					a.absX = true
				} else {
					a.absY = true
				}
				a.XYLogicalMax = max(a.XYLogicalMax, lmax)
			}
		}
	}
	for _, u := range usages {
		full := u.resolve(page)
		axis(full)
		switch full >> 16 {
		case PageKeyboard:
			keys++
		case PageButton:
			buttons++
		}
	}
	for _, r := range p.local.ranges {
		if !r.hasMin || !r.hasMax {
			continue
		}
		lo, hi := r.min.resolve(page), r.max.resolve(page)
		if hi < lo || lo>>16 != hi>>16 {
			continue
		}
		n := int64(hi-lo) + 1
		// X and Y lie in a range only on the Generic Desktop page.
		for _, ax := range []uint32{PageGenericDesktop<<16 | UsageX, PageGenericDesktop<<16 | UsageY} {
			if lo <= ax && ax <= hi {
				axis(ax)
			}
		}
		switch lo >> 16 {
		case PageKeyboard:
			keys += n
		case PageButton:
			// A variable item has one field per usage, at most Report
			// Count of them.
			if variable {
				n = min(n, count)
			}
			buttons += n
		}
	}
	if keys > 0 && !variable {
		a.KeySlots = clamp(int64(a.KeySlots) + count)
	}
	a.Keys = clamp(int64(a.Keys) + keys)
	a.Buttons = clamp(int64(a.Buttons) + buttons)
}

func clamp(v int64) int {
	return int(min(max(v, 0), maxCount))
}

// finish derives the per-application flags.
func (p *parser) finish() {
	for i := range p.rd.Applications {
		a := &p.rd.Applications[i]
		a.AbsoluteXY = a.absX && a.absY
		a.RelativeXY = a.relX && a.relY
	}
}
