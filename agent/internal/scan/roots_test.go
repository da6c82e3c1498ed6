package scan

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/roots from the builders below")

// The fixture roots are laptops (DMI identity, Linux files) with KVMs or
// ordinary peripherals attached, written as the sysfs/procfs trees the
// kernel presents. They are built here from the kernel's sysfs ABI
// (Documentation/ABI/{stable,testing}/sysfs-bus-usb, sysfs-class-drm),
// the /proc/bus/input/devices format (drivers/input/input.c), and, for
// the KVMs, the identities the projects' gadget scripts write
// (threat-signals.md §2.2). Ordinary devices use their public usb.ids
// vendor/product ids; their strings are what such devices typically
// report. HID report descriptors and EDIDs are the fixtures of the usb and
// display packages. `go test -run TestFixtureRoots -update` rewrites them.

const (
	rootsDir = "testdata/roots"
	hidDir   = "../signal/usb/testdata/hid"
	edidDir  = "../signal/display/testdata/edid"
)

type laptop struct {
	hostname, vendor, model, serial, uuid string
}

type iface struct {
	class, sub, proto int
	driver            string
	report            string   // HID report descriptor fixture
	scsi              []string // vendor, model, rev, type
	net               string   // net device name
}

type usbDev struct {
	port                       string // "1-2"
	vid, pid, bcd              int
	class, sub, proto          int
	mfr, product, serial, conf string
	speed                      string
	ifaces                     []iface
}

type connector struct {
	name    string // "card0-HDMI-A-1"
	edid    string // fixture file, "" for none
	enabled bool
}

type root struct {
	name     string
	machine  laptop
	lid      string // "open", "closed", "" (no ACPI lid)
	usb      []usbDev
	displays []connector
	inputs   []string // /proc/bus/input/devices blocks
	// extra are more files (path → content; "->target" makes a symlink):
	// time zone, locale, keyboard, users.
	extra map[string]string
}

// Ordinary parts of every laptop: root hubs, webcam, Bluetooth.
func builtins() []usbDev {
	return []usbDev{
		{port: "usb1", vid: 0x1d6b, pid: 0x0002, bcd: 0x0601, class: 9, mfr: "Linux 6.1.0-28-amd64 xhci-hcd",
			product: "xHCI Host Controller", serial: "0000:00:14.0", speed: "480",
			ifaces: []iface{{class: 9, driver: "hub"}}},
		{port: "usb2", vid: 0x1d6b, pid: 0x0003, bcd: 0x0601, class: 9, mfr: "Linux 6.1.0-28-amd64 xhci-hcd",
			product: "xHCI Host Controller", serial: "0000:00:14.0", speed: "10000",
			ifaces: []iface{{class: 9, driver: "hub"}}},
		{port: "1-6", vid: 0x0c45, pid: 0x6730, bcd: 0x0100, class: 0xef, sub: 2, proto: 1, mfr: "CN0N9HR7LOG0014CBA3YA01",
			product: "Integrated_Webcam_HD", serial: "01.00.00", speed: "480",
			ifaces: []iface{{class: 0x0e, sub: 1, driver: "uvcvideo"}, {class: 0x0e, sub: 2, driver: "uvcvideo"}}},
		{port: "1-10", vid: 0x8087, pid: 0x0026, bcd: 0x0002, class: 0xe0, sub: 1, proto: 1, speed: "12",
			ifaces: []iface{{class: 0xe0, sub: 1, proto: 1, driver: "btusb"}, {class: 0xe0, sub: 1, proto: 1, driver: "btusb"}}},
	}
}

func panel(on bool) connector { return connector{"card0-eDP-1", "laptop_boe_edp.bin", on} }

// KVM gadgets: keyboard, absolute mouse and optional extras per §2.2.
var (
	kbd   = iface{class: 3, sub: 1, proto: 1, driver: "usbhid", report: "boot_keyboard.hex"}
	absPi = iface{class: 3, driver: "usbhid", report: "pikvm_like_abs_mouse.hex"}
	absTP = iface{class: 3, driver: "usbhid", report: "tinypilot_like_abs_mouse.hex"}
	absNK = iface{class: 3, sub: 0, proto: 2, driver: "usbhid", report: "nanokvm_like_abs_touchpad.hex"}
	relM  = iface{class: 3, sub: 1, proto: 2, driver: "usbhid", report: "mouse_3button_wheel.hex"}
	cc    = iface{class: 3, driver: "usbhid", report: "consumer_control.hex"}
	cdrom = func(v, m, r string) iface {
		return iface{class: 8, sub: 6, proto: 0x50, driver: "usb-storage", scsi: []string{v, m, r, "5"}}
	}
	noDesc = func(i iface) iface { i.report = ""; return i }
)

func roots() []root {
	lat := func(host, serial, uuid string) laptop {
		return laptop{host, "Dell Inc.", "Latitude 5440", serial, uuid}
	}
	tp := func(host, serial, uuid string) laptop {
		return laptop{host, "LENOVO", "21HD0045US", serial, uuid}
	}
	kvmDisplays := func(edid string) []connector {
		return []connector{panel(false), {"card0-HDMI-A-1", edid, true}}
	}
	disguised := func(name string, m laptop) root {
		// PiKVM after `kvmd-otgconf --import-usb-ids` from a Dell KB216
		// keyboard and `kvmd-edidconf` to a Dell P2419H: the strings are
		// a real keyboard's, the function mix and MSD are not.
		return root{name: name, machine: m, lid: "closed",
			usb: []usbDev{{port: "1-2", vid: 0x413c, pid: 0x2113, bcd: 0x0110, mfr: "Dell", product: "Dell KB216 Wired Keyboard",
				serial: "CN0F4G7M", speed: "480", ifaces: []iface{kbd, absPi, cdrom("Dell", "GENERIC", "1.00")}}},
			displays: kvmDisplays("pikvm_edidconf_dell.bin")}
	}
	return []root{
		{name: "pikvm-v3", machine: lat("lat-pikvm", "4XK2LM3", "4C4C4544-0034-5810-804B-B4C04F4C4D33"), lid: "closed",
			usb: []usbDev{{port: "1-2", vid: 0x1d6b, pid: 0x0104, bcd: 0x0100, mfr: "PiKVM", product: "PiKVM Composite Device",
				serial: "CAFEBABE", speed: "480", ifaces: []iface{kbd, absPi, cdrom("PiKVM", "Optical Drive", "1.00")}}},
			displays: kvmDisplays("pikvm_v3.bin")},
		disguised("pikvm-disguised-a", tp("tp-farm-07", "PF4A2B7C", "2A1B3C4D-5E6F-11EE-8C90-0242AC120007")),
		disguised("pikvm-disguised-b", tp("tp-farm-08", "PF4A2B9D", "2A1B3C4D-5E6F-11EE-8C90-0242AC120008")),
		{name: "tinypilot-voyager", machine: lat("lat-tinypilot", "5XK2LM3", "4C4C4544-0035-5810-804B-B5C04F4C4D33"), lid: "closed",
			usb: []usbDev{{port: "1-3", vid: 0x1d6b, pid: 0x0104, bcd: 0x0100, mfr: "tinypilot", product: "Multifunction USB Device",
				serial: "6b65796d696d6570690", conf: "Config 1: ECM network", speed: "480", ifaces: []iface{kbd, absTP}}},
			displays: kvmDisplays("tinypilot_voyager.bin")},
		{name: "jetkvm", machine: lat("lat-jetkvm", "6XK2LM3", "4C4C4544-0036-5810-804B-B6C04F4C4D33"), lid: "closed",
			usb: []usbDev{{port: "1-1", vid: 0x1d6b, pid: 0x0104, bcd: 0x0100, mfr: "JetKVM", product: "USB Emulation Device",
				conf: "Config 1: HID", speed: "480", ifaces: []iface{kbd, absPi, relM, cdrom("JetKVM", "Virtual Media", "")}}},
			displays: kvmDisplays("jetkvm_default.bin")},
		{name: "jetkvm-preset", machine: tp("tp-jetkvm", "PF3X9K2M", "7D2E4F60-1A2B-11EE-9C3D-0242AC120002"), lid: "closed",
			usb: []usbDev{{port: "1-1", vid: 0x046d, pid: 0xc52b, bcd: 0x0100, mfr: "Logitech (x64)", product: "Logitech USB Input Device",
				serial: "8F3KQ27X", speed: "480", ifaces: []iface{kbd, absPi, relM, cdrom("JetKVM", "Virtual Media", "")}}},
			displays: kvmDisplays("jetkvm_preset_dell.bin")},
		{name: "nanokvm", machine: lat("lat-nanokvm", "7XK2LM4", "4C4C4544-0037-5810-804B-B7C04F4C4D34"), lid: "closed",
			usb: []usbDev{{port: "1-4", vid: 0x3346, pid: 0x1009, bcd: 0x0510, class: 0xef, sub: 2, proto: 1, mfr: "sipeed", product: "NanoKVM",
				serial: "0123456789ABCDEF", conf: "NanoKVM", speed: "480", ifaces: []iface{kbd, relM, absNK}}},
			displays: kvmDisplays("nanokvm_e21.bin")},
		{name: "glkvm-comet", machine: tp("tp-comet", "PF1C0M3T", "5B6C7D8E-9F01-11EE-8A2B-0242AC120005"), lid: "closed",
			usb: []usbDev{{port: "1-2", vid: 0x38eb, pid: 0x0104, bcd: 0x0100, mfr: "Glinet", product: "Glinet Composite Device",
				serial: "CAFEBABE", conf: "Glinet device", speed: "480", ifaces: []iface{kbd, absPi, cdrom("Glinet", "Optical Drive", "1.00")}}},
			// The Comet's own EDID (LT6911C firmware) is not documented:
			// only the USB side is in this root.
			displays: []connector{panel(false)}},
		{name: "blikvm", machine: lat("lat-blikvm", "8XK2LM3", "4C4C4544-0038-5810-804B-B8C04F4C4D33"), lid: "closed",
			usb: []usbDev{{port: "1-2", vid: 0x1d6b, pid: 0x0106, bcd: 0x0100, mfr: "smart-kvm", product: "Multifunction USB Device",
				serial: "6b65796d696d6570690", speed: "480", ifaces: []iface{kbd, absTP}}},
			displays: kvmDisplays("tsb_toshiba_h2c.bin")},
		{name: "pikvm-pico-hid", machine: tp("tp-pico", "PF2P1C0H", "6C7D8E9F-0A12-11EE-8B3C-0242AC120006"), lid: "closed",
			usb: []usbDev{{port: "1-3", vid: 0x1209, pid: 0xeda2, bcd: 0x0100, mfr: "PiKVM", product: "PiKVM HID",
				serial: "E6614C311B7A5F2C", speed: "12", ifaces: []iface{kbd, absPi}}},
			displays: kvmDisplays("ms2130_capture.bin")},
		{name: "ch9329-box", machine: lat("lat-ch9329", "9XK2LM3", "4C4C4544-0039-5810-804B-B9C04F4C4D33"), lid: "closed",
			// The CH9329's report descriptors are not readable in this root;
			// the HID functions come from /proc/bus/input/devices.
			usb:      []usbDev{{port: "1-1", vid: 0x1a86, pid: 0xe129, bcd: 0x0110, speed: "12", ifaces: []iface{noDesc(kbd), noDesc(absPi)}}},
			displays: kvmDisplays("ms2130_capture.bin"),
			inputs: []string{
				inputBlock("1a86", "e129", "1-1", 0, "sysrq kbd event5 leds", "120013", "1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe", "", ""),
				inputBlock("1a86", "e129", "1-1", 1, "mouse1 event6", "1b", "1f0000 0 0 0 0", "", "3"),
			}},
		{name: "aten-dongle", machine: lat("lat-aten", "1YK2LM3", "4C4C4544-0031-5910-804B-B1C04F4C4D33"), lid: "open",
			usb:      []usbDev{{port: "1-2", vid: 0x0557, pid: 0x2419, bcd: 0x0100, speed: "12", ifaces: []iface{kbd, relM}}},
			displays: []connector{panel(true), {"card0-DP-1", "hp_e24.bin", true}}},
		{name: "digispark-jiggler", machine: lat("lat-jiggle", "2YK2LM3", "4C4C4544-0032-5910-804B-B2C04F4C4D33"), lid: "open",
			usb: []usbDev{{port: "1-3", vid: 0x16c0, pid: 0x27da, bcd: 0x0100, mfr: "digistump.com", product: "DigiMouse",
				speed: "1.5", ifaces: []iface{relM}}},
			displays: []connector{panel(true)}},

		// Where the laptop is: time zone, locale, keyboard layouts and input
		// methods per user (the location end-to-end test delivers these).
		{name: "remote-ny", machine: lat("lat-ny", "5ZK2LM3", "4C4C4544-0035-5A10-804B-B5C04F4C4D35"), lid: "open",
			displays: []connector{panel(true)},
			extra: map[string]string{
				"etc/localtime":        "->/usr/share/zoneinfo/America/New_York",
				"etc/default/locale":   "LANG=en_US.UTF-8\n",
				"etc/default/keyboard": "XKBMODEL=\"pc105\"\nXKBLAYOUT=\"us\"\n",
				"etc/passwd":           "root:x:0:0:root:/root:/bin/bash\nana:x:1000:1000:Ana Lima:/home/ana:/bin/bash\n",
				"home/ana/.bashrc":     "",
			}},
		{name: "seoul-clock", machine: tp("tp-seoul", "PF5E0U1C", "9F0A1B2C-3D4E-11EE-8E5F-0242AC120010"), lid: "open",
			displays: []connector{panel(true)},
			extra: map[string]string{
				"etc/localtime":        "->/usr/share/zoneinfo/Asia/Seoul",
				"etc/default/locale":   "LANG=en_US.UTF-8\n",
				"etc/default/keyboard": "XKBLAYOUT=\"us\"\n",
				"etc/passwd":           "root:x:0:0:root:/root:/bin/bash\nmkim:x:1000:1000::/home/mkim:/bin/bash\n",
				"home/mkim/.config/fcitx5/profile": "[Groups/0]\nName=Default\nDefault Layout=us\nDefaultIM=hangul\n\n" +
					"[Groups/0/Items/0]\nName=keyboard-us\nLayout=\n\n[Groups/0/Items/1]\nName=hangul\nLayout=\n\n[GroupOrder]\n0=Default\n",
				// Wi-Fi and an Astrill VPN tunnel (a tun device named by the
				// client), default route over Wi-Fi.
				"sys/class/net/wlan0/type":          "1\n",
				"sys/class/net/wlan0/address":       "3c:22:fb:10:20:30\n",
				"sys/class/net/wlan0/operstate":     "up\n",
				"sys/class/net/wlan0/flags":         "0x1003\n",
				"sys/class/net/wlan0/uevent":        "DEVTYPE=wlan\nINTERFACE=wlan0\nIFINDEX=3\n",
				"sys/class/net/wlan0/phy80211/name": "phy0\n",
				"sys/class/net/astrill0/type":       "65534\n",
				"sys/class/net/astrill0/operstate":  "unknown\n",
				"sys/class/net/astrill0/flags":      "0x1091\n",
				"sys/class/net/astrill0/tun_flags":  "0x1001\n",
				"sys/class/net/astrill0/uevent":     "INTERFACE=astrill0\nIFINDEX=6\n",
				"sys/class/net/lo/type":             "772\n",
				"sys/class/net/lo/operstate":        "unknown\n",
				"sys/class/net/lo/flags":            "0x9\n",
				"proc/net/route": "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
					"wlan0\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
					"wlan0\t0000A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n" +
					"astrill0\t000008C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
				"proc/net/arp": "IP address       HW type     Flags       HW address            Mask     Device\n" +
					"192.168.0.1      0x1         0x2         f4:92:bf:01:02:03     *        wlan0\n",
				"etc/resolv.conf": "nameserver 192.168.0.1\n",
				// An SSH login from abroad, ended, and a console login still open.
				"var/log/wtmp": string(slices.Concat(
					utmpRecord(2, 0, "~", "~~", "reboot", "6.1.0-28-amd64", time.Date(2025, 11, 20, 1, 0, 0, 0, time.UTC)),
					utmpRecord(7, 1201, "tty2", "tty2", "mkim", "", time.Date(2025, 11, 20, 1, 5, 0, 0, time.UTC)),
					utmpRecord(7, 2211, "pts/1", "ts/1", "mkim", "175.45.176.7", time.Date(2025, 11, 20, 2, 0, 0, 0, time.UTC)),
					utmpRecord(8, 2211, "pts/1", "ts/1", "", "", time.Date(2025, 11, 20, 9, 30, 0, 0, time.UTC)))),
			}},

		// Ordinary peripherals: none of these may be flagged.
		{name: "office-dock", machine: lat("lat-office", "3YK2LM3", "4C4C4544-0033-5910-804B-B3C04F4C4D33"), lid: "open",
			usb: []usbDev{
				{port: "1-1", vid: 0x046d, pid: 0xc52b, bcd: 0x1211, mfr: "Logitech", product: "USB Receiver", speed: "12",
					ifaces: []iface{kbd, relM, cc}},
				{port: "1-4", vid: 0x2109, pid: 0x2817, bcd: 0x0590, class: 9, sub: 0, proto: 2, mfr: "VIA Labs, Inc.", product: "USB2.0 Hub",
					serial: "000000000", speed: "480", ifaces: []iface{{class: 9, driver: "hub"}}},
				{port: "1-4.1", vid: 0x0bda, pid: 0x8153, bcd: 0x3100, mfr: "Realtek", product: "USB 10/100/1000 LAN",
					serial: "001000001", speed: "480", ifaces: []iface{{class: 0xff, sub: 0xff, driver: "r8152", net: "enx00e04c680001"}}},
				{port: "1-4.2", vid: 0x1050, pid: 0x0407, bcd: 0x0543, mfr: "Yubico", product: "YubiKey OTP+FIDO+CCID", speed: "12",
					ifaces: []iface{kbd, {class: 3, driver: "usbhid"}, {class: 0x0b, driver: "usbfs"}}},
			},
			displays: []connector{panel(true), {"card0-DP-1", "dell_p2419h.bin", true}}},
		{name: "home-desk", machine: tp("tp-home", "PF0H0M3D", "8E9F0A1B-2C3D-11EE-8D4E-0242AC120009"), lid: "closed",
			usb: []usbDev{
				{port: "1-1", vid: 0x045e, pid: 0x07f8, bcd: 0x0300, mfr: "Microsoft", product: "Wired Keyboard 600", speed: "1.5",
					ifaces: []iface{kbd, cc}},
				{port: "1-2", vid: 0x2341, pid: 0x0043, bcd: 0x0001, class: 2, mfr: "Arduino (www.arduino.cc)",
					serial: "75833353035351D03101", speed: "12",
					ifaces: []iface{{class: 2, sub: 2, proto: 1, driver: "cdc_acm"}, {class: 0x0a, driver: "cdc_acm"}}},
				{port: "1-3", vid: 0x2e8a, pid: 0x0005, bcd: 0x0100, class: 0xef, sub: 2, proto: 1, mfr: "MicroPython",
					product: "Board in FS mode", serial: "e6614864d3417f2f", speed: "12",
					ifaces: []iface{{class: 2, sub: 2, proto: 1, driver: "cdc_acm"}, {class: 0x0a, driver: "cdc_acm"}}},
			},
			displays: []connector{panel(false), {"card0-DP-2", "monitor_4k_cta.bin", true}}},
	}
}

// inputBlock is one /proc/bus/input/devices entry of a USB HID interface.
func inputBlock(vid, pid, port string, ifnum int, handlers, ev, key, rel, abs string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "I: Bus=0003 Vendor=%s Product=%s Version=0110\n", vid, pid)
	fmt.Fprintf(&b, "N: Name=\"USB HID %s:%s\"\n", vid, pid)
	fmt.Fprintf(&b, "P: Phys=usb-0000:00:14.0-%s/input%d\n", strings.TrimPrefix(port, "1-"), ifnum)
	fmt.Fprintf(&b, "S: Sysfs=/devices/pci0000:00/0000:00:14.0/usb1/%s/%s:1.%d/0003:%s:%s.%04X/input/input%d\n",
		port, port, ifnum, strings.ToUpper(vid), strings.ToUpper(pid), ifnum+1, ifnum+5)
	fmt.Fprintf(&b, "U: Uniq=\nH: Handlers=%s\nB: PROP=0\nB: EV=%s\nB: KEY=%s\n", handlers, ev, key)
	if rel != "" {
		fmt.Fprintf(&b, "B: REL=%s\n", rel)
	}
	if abs != "" {
		fmt.Fprintf(&b, "B: ABS=%s\n", abs)
	}
	return b.String()
}

// utmpRecord is one Linux struct utmp (384 bytes, little-endian; see
// utmp(5)): type, pid, line[32], id[4], user[32], host[256], exit, session,
// tv_sec, tv_usec, addr_v6[4], unused[20].
func utmpRecord(typ, pid int32, line, id, user, host string, t time.Time) []byte {
	b := make([]byte, 384)
	binary.LittleEndian.PutUint32(b[0:], uint32(typ))
	binary.LittleEndian.PutUint32(b[4:], uint32(pid))
	copy(b[8:40], line)
	copy(b[40:44], id)
	copy(b[44:76], user)
	copy(b[76:332], host)
	binary.LittleEndian.PutUint32(b[340:], uint32(t.Unix()))
	return b
}

// files renders a root as path → content.
func (r root) files(t testing.TB) map[string][]byte {
	f := map[string][]byte{}
	put := func(p, s string) { f[p] = []byte(s + "\n") }
	m := r.machine
	put("etc/hostname", m.hostname)
	put("proc/sys/kernel/hostname", m.hostname)
	put("proc/sys/kernel/osrelease", "6.1.0-28-amd64")
	put("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian")
	put("etc/machine-id", strings.ToLower(strings.ReplaceAll(m.uuid, "-", "")))
	put("proc/stat", "cpu  2255 34 2290 22625563 6290 127 456 0 0 0\nbtime 1763884800")
	dmi := "sys/class/dmi/id/"
	put(dmi+"sys_vendor", m.vendor)
	put(dmi+"product_name", m.model)
	put(dmi+"product_serial", m.serial)
	put(dmi+"product_uuid", m.uuid)
	put(dmi+"board_serial", "/"+m.serial+"/")
	if r.lid != "" {
		put("proc/acpi/button/lid/LID0/state", "state:      "+r.lid)
	}
	hidN := 1
	for _, d := range append(builtins(), r.usb...) {
		dir := "sys/bus/usb/devices/" + d.port + "/"
		put(dir+"idVendor", fmt.Sprintf("%04x", d.vid))
		put(dir+"idProduct", fmt.Sprintf("%04x", d.pid))
		put(dir+"bcdDevice", fmt.Sprintf("%04x", d.bcd))
		put(dir+"bDeviceClass", fmt.Sprintf("%02x", d.class))
		put(dir+"bDeviceSubClass", fmt.Sprintf("%02x", d.sub))
		put(dir+"bDeviceProtocol", fmt.Sprintf("%02x", d.proto))
		put(dir+"bNumInterfaces", fmt.Sprintf("%2d", len(d.ifaces)))
		put(dir+"speed", d.speed)
		put(dir+"configuration", d.conf)
		for name, v := range map[string]string{"manufacturer": d.mfr, "product": d.product, "serial": d.serial} {
			if v != "" { // the kernel creates these only when the descriptor exists
				put(dir+name, v)
			}
		}
		owner := d.port
		if strings.HasPrefix(owner, "usb") {
			owner = strings.TrimPrefix(owner, "usb") + "-0"
		}
		for n, i := range d.ifaces {
			idir := fmt.Sprintf("sys/bus/usb/devices/%s:1.%d/", owner, n)
			put(idir+"bInterfaceNumber", fmt.Sprintf("%02x", n))
			put(idir+"bInterfaceClass", fmt.Sprintf("%02x", i.class))
			put(idir+"bInterfaceSubClass", fmt.Sprintf("%02x", i.sub))
			put(idir+"bInterfaceProtocol", fmt.Sprintf("%02x", i.proto))
			if i.driver != "" {
				f[idir+"driver"] = []byte("->../../../../bus/usb/drivers/" + i.driver)
			}
			if i.report != "" {
				f[idir+fmt.Sprintf("0003:%04X:%04X.%04X/report_descriptor", d.vid, d.pid, hidN)] = hexFixture(t, i.report)
				hidN++
			}
			if i.scsi != nil {
				sd := idir + "host0/target0:0:0/0:0:0:0/"
				put(sd+"vendor", fmt.Sprintf("%-8s", i.scsi[0]))
				put(sd+"model", fmt.Sprintf("%-16s", i.scsi[1]))
				put(sd+"rev", fmt.Sprintf("%-4s", i.scsi[2]))
				put(sd+"type", i.scsi[3])
			}
			if i.net != "" {
				put(idir+"net/"+i.net+"/address", "00:e0:4c:68:00:01")
			}
		}
	}
	for _, c := range r.displays {
		dir := "sys/class/drm/" + c.name + "/"
		put(dir+"status", "connected")
		put(dir+"enabled", map[bool]string{true: "enabled", false: "disabled"}[c.enabled])
		put(dir+"dpms", map[bool]string{true: "On", false: "Off"}[c.enabled])
		var edid []byte
		if c.edid != "" {
			var err error
			if edid, err = os.ReadFile(filepath.Join(edidDir, c.edid)); err != nil {
				t.Fatal(err)
			}
		}
		f[dir+"edid"] = edid
	}
	f["proc/bus/input/devices"] = []byte(strings.Join(r.inputs, "\n"))
	for p, c := range r.extra {
		f[p] = []byte(c)
	}
	return f
}

func hexFixture(t testing.TB, name string) []byte {
	text, err := os.ReadFile(filepath.Join(hidDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range strings.Split(string(text), "\n") {
		line, _, _ = strings.Cut(line, "#")
		b, err := hex.DecodeString(strings.Join(strings.Fields(line), ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, b...)
	}
	return out
}

// write creates the tree; a value starting with "->" is a symlink.
func write(dir string, files map[string][]byte) error {
	for p, b := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if target, ok := bytes.CutPrefix(b, []byte("->")); ok {
			if err := os.Symlink(string(target), full); err != nil {
				return err
			}
			continue
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// read loads a tree in the files() form.
func read(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&fs.ModeSymlink != 0 {
			l, err := os.Readlink(p)
			out[filepath.ToSlash(rel)] = []byte("->" + l)
			return err
		}
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	return out, err
}

// skipOnWindows skips a test of the roots on Windows, which cannot hold
// them: a USB interface's sysfs directory is named PORT:CONFIG.INTERFACE
// (no ':' in a Windows file name) and its driver is a symlink. The Linux
// readers they exercise are tested on Linux.
func skipOnWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fixture roots are Linux sysfs trees: their USB interface directories (PORT:CONFIG.INTERFACE) cannot be named on Windows and their driver links are symlinks")
	}
}

// TestFixtureRoots checks that the checked-in roots match their builders
// (`-update` rewrites them).
func TestFixtureRoots(t *testing.T) {
	skipOnWindows(t)
	for _, r := range roots() {
		dir := filepath.Join(rootsDir, r.name)
		want := r.files(t)
		if *update {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := write(dir, want); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := read(dir)
		if err != nil {
			t.Fatalf("%v (go test -run TestFixtureRoots -update)", err)
		}
		for p, b := range want {
			if !bytes.Equal(got[p], b) {
				t.Errorf("%s/%s differs from its builder (go test -run TestFixtureRoots -update)", dir, p)
			}
			delete(got, p)
		}
		for p := range got {
			t.Errorf("%s/%s is not built by roots()", dir, p)
		}
	}
}

// TestRootsFindings: every KVM root has peripheral findings, the ordinary
// ones none (the exact findings are in the agent's scan goldens and the
// collector's end-to-end test).
func TestRootsFindings(t *testing.T) {
	skipOnWindows(t)
	ordinary := map[string]bool{"office-dock": true, "home-desk": true, "remote-ny": true, "seoul-clock": true}
	for _, r := range roots() {
		sn, err := (&Scanner{Root: filepath.Join(rootsDir, r.name)}).Scan(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n := len(sn.GetPeripherals().GetFindings())
		if ordinary[r.name] != (n == 0) {
			t.Errorf("%s: %d findings: %v", r.name, n, sn.GetPeripherals().GetFindings())
		}
		if len(sn.GetUsb().GetDevices()) < len(r.usb) || len(sn.GetDisplays().GetDisplays()) != len(r.displays) {
			t.Errorf("%s: read %d USB devices and %d displays", r.name, len(sn.GetUsb().GetDevices()), len(sn.GetDisplays().GetDisplays()))
		}
	}
}
