package usb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/bonafide-sec/bonafide/agent/internal/fsx"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// The Linux reader follows the sysfs ABI of USB devices
// (Documentation/ABI/stable/sysfs-bus-usb and testing/sysfs-bus-usb in the
// kernel tree): /sys/bus/usb/devices holds one entry per device ("1-2",
// "1-2.3", root hubs "usb1") and per interface ("1-2:1.0"). HID report
// descriptors are at <interface>/<hid device>/report_descriptor, SCSI
// inquiry strings of a mass-storage function at
// <interface>/host*/target*/<h:c:t:l>/{vendor,model,rev,type}, network
// functions' net devices at <interface>/net/*. /proc/bus/input/devices
// fills in the HID summary of devices whose report descriptor cannot be
// read.

const (
	sysUSB      = "sys/bus/usb/devices"
	procInput   = "proc/bus/input/devices"
	maxAttr     = 4096    // longest sysfs attribute read (strings are ≤ 255 UTF-16 units)
	maxReport   = 4096    // HID report descriptors are at most 4 KiB (HID_MAX_DESCRIPTOR_SIZE)
	maxInputLog = 1 << 20 // /proc/bus/input/devices
	maxDevices  = 1024    // USB allows 127 devices per bus; keep a generous bound
	maxDepth    = 4       // of the search for SCSI devices below an interface
)

var (
	deviceName    = regexp.MustCompile(`^(usb[0-9]+|[0-9]+-[0-9]+(\.[0-9]+)*)$`)
	interfaceName = regexp.MustCompile(`^([0-9]+-[0-9]+(\.[0-9]+)*|[0-9]+-0):[0-9]+\.[0-9]+$`)
	hidName       = regexp.MustCompile(`^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}\.[0-9A-Fa-f]+$`)
	scsiName      = regexp.MustCompile(`^[0-9]+:[0-9]+:[0-9]+:[0-9]+$`)
)

// readSysfs reads every USB device under fsys's sys/bus/usb/devices.
func readSysfs(fsys fs.FS) (*agentv1.Usb, error) {
	ents, err := fs.ReadDir(fsys, sysUSB)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &agentv1.Usb{}, nil // no USB controller
		}
		return nil, err
	}
	byName := map[string]*agentv1.UsbDevice{}
	hid := map[string][]*ReportDescriptor{}
	var out agentv1.Usb
	for _, e := range ents {
		if !deviceName.MatchString(e.Name()) || len(out.Devices) >= maxDevices {
			continue
		}
		d, err := sysfsDevice(fsys, path.Join(sysUSB, e.Name()))
		if err != nil {
			continue // unplugged while reading, or not a device
		}
		d.Location = e.Name()
		byName[e.Name()] = d
		out.Devices = append(out.Devices, d)
	}
	for _, e := range ents {
		m := interfaceName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		owner := m[1]
		if strings.HasSuffix(owner, "-0") { // root hub interface "1-0:1.0"
			owner = "usb" + strings.TrimSuffix(owner, "-0")
		}
		d := byName[owner]
		if d == nil {
			continue
		}
		dir := path.Join(sysUSB, e.Name())
		i := sysfsInterface(fsys, dir)
		d.Interfaces = append(d.Interfaces, i)
		if i.Class == ClassHID {
			hid[owner] = append(hid[owner], sysfsReports(fsys, dir)...)
		}
		if i.Class == ClassMassStorage && d.MassStorage == nil {
			d.MassStorage = sysfsInquiry(fsys, dir, 0)
		}
		if IsNetworkInterface(i) || hasEntries(fsys, path.Join(dir, "net")) {
			d.NetworkFunction = true
		}
	}
	inputs := parseInputDevices(fsys)
	for name, d := range byName {
		d.Hid = Summarize(hid[name]...)
		for _, in := range inputs {
			if in.usbDevice() == name {
				in.addTo(d.Hid)
			}
		}
		Finish(d)
	}
	Sort(out.Devices)
	return &out, nil
}

// sysfsDevice reads a device directory's descriptor attributes.
func sysfsDevice(fsys fs.FS, dir string) (*agentv1.UsbDevice, error) {
	vid, err := hexAttr(fsys, dir, "idVendor")
	if err != nil {
		return nil, err
	}
	d := &agentv1.UsbDevice{VendorId: vid}
	d.ProductId, _ = hexAttr(fsys, dir, "idProduct")
	d.BcdDevice, _ = hexAttr(fsys, dir, "bcdDevice")
	d.DeviceClass, _ = hexAttr(fsys, dir, "bDeviceClass")
	d.DeviceSubclass, _ = hexAttr(fsys, dir, "bDeviceSubClass")
	d.DeviceProtocol, _ = hexAttr(fsys, dir, "bDeviceProtocol")
	d.Manufacturer = attr(fsys, dir, "manufacturer")
	d.Product = attr(fsys, dir, "product")
	d.Serial = attr(fsys, dir, "serial")
	d.Configuration = attr(fsys, dir, "configuration")
	switch s := attr(fsys, dir, "speed"); s {
	case "1.5":
		d.SpeedMbps = 1
	default:
		if v, err := strconv.ParseUint(s, 10, 32); err == nil {
			d.SpeedMbps = uint32(v)
		}
	}
	return d, nil
}

func sysfsInterface(fsys fs.FS, dir string) *agentv1.UsbInterface {
	i := &agentv1.UsbInterface{}
	i.Number, _ = hexAttr(fsys, dir, "bInterfaceNumber")
	i.Class, _ = hexAttr(fsys, dir, "bInterfaceClass")
	i.Subclass, _ = hexAttr(fsys, dir, "bInterfaceSubClass")
	i.Protocol, _ = hexAttr(fsys, dir, "bInterfaceProtocol")
	if l, err := fs.ReadLink(fsys, path.Join(dir, "driver")); err == nil {
		i.Driver = clean(path.Base(l))
	}
	return i
}

// sysfsReports parses the report descriptors of the HID devices bound
// below an interface. A malformed descriptor contributes what it declared
// before the error.
func sysfsReports(fsys fs.FS, dir string) []*ReportDescriptor {
	ents, _ := fs.ReadDir(fsys, dir)
	var out []*ReportDescriptor
	for _, e := range ents {
		if !hidName.MatchString(e.Name()) {
			continue
		}
		b, err := fsx.ReadCapped(fsys, path.Join(dir, e.Name(), "report_descriptor"), maxReport)
		if err != nil || len(b) == 0 {
			continue
		}
		rd, _ := ParseReportDescriptor(b)
		out = append(out, rd)
	}
	return out
}

// sysfsInquiry finds the first SCSI device below a mass-storage interface
// and returns its INQUIRY strings (type 5 is a CD-ROM).
func sysfsInquiry(fsys fs.FS, dir string, depth int) *agentv1.MassStorage {
	if depth > maxDepth {
		return nil
	}
	ents, _ := fs.ReadDir(fsys, dir)
	for _, e := range ents {
		p := path.Join(dir, e.Name())
		switch {
		case scsiName.MatchString(e.Name()):
			m := &agentv1.MassStorage{
				Vendor:   attr(fsys, p, "vendor"),
				Product:  attr(fsys, p, "model"),
				Revision: attr(fsys, p, "rev"),
				Cdrom:    attr(fsys, p, "type") == "5",
			}
			if m.Vendor+m.Product+m.Revision != "" || m.Cdrom {
				return m
			}
		case strings.HasPrefix(e.Name(), "host") || strings.HasPrefix(e.Name(), "target"):
			if m := sysfsInquiry(fsys, p, depth+1); m != nil {
				return m
			}
		}
	}
	return nil
}

func hasEntries(fsys fs.FS, dir string) bool {
	ents, err := fs.ReadDir(fsys, dir)
	return err == nil && len(ents) > 0
}

// attr reads a text attribute, trimmed of the trailing newline and of
// padding spaces (SCSI inquiry strings are space-padded), with invalid
// UTF-8 and control characters replaced.
func attr(fsys fs.FS, dir, name string) string {
	b, err := fsx.ReadCapped(fsys, path.Join(dir, name), maxAttr)
	if err != nil {
		return ""
	}
	return clean(string(b))
}

func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// hexAttr reads a hexadecimal attribute such as idVendor ("1d6b").
func hexAttr(fsys fs.FS, dir, name string) (uint32, error) {
	s := attr(fsys, dir, name)
	v, err := strconv.ParseUint(s, 16, 16)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %q is not a 16-bit hex value", dir, name, s)
	}
	return uint32(v), nil
}

// inputDevice is one block of /proc/bus/input/devices.
type inputDevice struct {
	bus      uint64
	sysfs    string
	handlers []string
	ev, key  []uint64
	rel, abs []uint64
}

// Event types and codes from linux/input-event-codes.h.
const (
	evKey      = 0x01
	evRel      = 0x02
	evAbs      = 0x03
	relX, relY = 0x00, 0x01
	absX, absY = 0x00, 0x01
	btnLeft    = 0x110
	btnTool    = 0x140 // BTN_TOOL_PEN: pens and touch screens
	btnTouch   = 0x14a
	keyA       = 30
	keySpace   = 57
	busUSB     = 0x03
)

// parseInputDevices reads /proc/bus/input/devices; a missing or
// unreadable file yields nothing.
func parseInputDevices(fsys fs.FS) []inputDevice {
	b, err := fsx.ReadCapped(fsys, procInput, maxInputLog)
	if err != nil {
		return nil
	}
	return parseInputLog(b)
}

func parseInputLog(b []byte) []inputDevice {
	var out []inputDevice
	var cur *inputDevice
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 3 || line[1] != ':' {
			cur = nil
			continue
		}
		if cur == nil {
			out = append(out, inputDevice{})
			cur = &out[len(out)-1]
		}
		val := strings.TrimSpace(line[2:])
		switch line[0] {
		case 'I':
			for _, f := range strings.Fields(val) {
				if v, ok := strings.CutPrefix(f, "Bus="); ok {
					cur.bus, _ = strconv.ParseUint(v, 16, 16)
				}
			}
		case 'S':
			cur.sysfs, _ = strings.CutPrefix(val, "Sysfs=")
		case 'H':
			h, _ := strings.CutPrefix(val, "Handlers=")
			cur.handlers = strings.Fields(h)
		case 'B':
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				continue
			}
			bits := parseBitmap(v)
			switch k {
			case "EV":
				cur.ev = bits
			case "KEY":
				cur.key = bits
			case "REL":
				cur.rel = bits
			case "ABS":
				cur.abs = bits
			}
		}
	}
	return out
}

// parseBitmap decodes a kernel bitmap as /proc/bus/input/devices prints it:
// space-separated hex words, most significant first.
func parseBitmap(s string) []uint64 {
	f := strings.Fields(s)
	if len(f) > 64 {
		return nil
	}
	out := make([]uint64, len(f))
	for i, w := range f {
		v, err := strconv.ParseUint(w, 16, 64)
		if err != nil {
			return nil
		}
		out[len(f)-1-i] = v
	}
	return out
}

func bit(bm []uint64, n int) bool {
	w := n / 64
	return w < len(bm) && bm[w]&(1<<(n%64)) != 0
}

// usbDevice returns the sysfs name of the USB device an input device
// belongs to ("1-2" for .../1-2/1-2:1.0/0003:...), or "".
func (d *inputDevice) usbDevice() string {
	if d.bus != busUSB {
		return ""
	}
	for _, el := range strings.Split(d.sysfs, "/") {
		if m := interfaceName.FindStringSubmatch(el); m != nil {
			return m[1]
		}
	}
	return ""
}

// addTo adds what the input device's capability bits show to a HID
// summary: a keyboard has the letter keys, a relative mouse REL_X/REL_Y, an
// absolute pointer ABS_X/ABS_Y with a left button and no pen/touch tool (a
// digitizer when it has them).
func (d *inputDevice) addTo(s *agentv1.HidSummary) {
	if bit(d.ev, evKey) && bit(d.key, keyA) && bit(d.key, keySpace) {
		s.Keyboard = true
	}
	if bit(d.ev, evRel) && bit(d.rel, relX) && bit(d.rel, relY) {
		s.RelativeMouse = true
	}
	if bit(d.ev, evAbs) && bit(d.abs, absX) && bit(d.abs, absY) {
		switch {
		case bit(d.key, btnTool) || bit(d.key, btnTouch):
			s.Digitizer = true
		case bit(d.key, btnLeft):
			s.AbsolutePointer = true
		}
	}
}
