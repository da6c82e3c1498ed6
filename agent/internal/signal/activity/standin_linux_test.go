package activity

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The stand-in desktop: a D-Bus service, in this test binary run as a
// separate process as the bus's user (a session bus accepts no other
// user), that owns a desktop's bus name and answers its idle-time method
// with the idle time the test sets. It speaks the D-Bus wire protocol
// itself (D-Bus Specification: "Message Protocol", "Authentication
// Protocol"): no D-Bus library is among the project's dependencies, and
// dbus-test-tool cannot answer a value.
//
// It is run with standInEnv set to one of standInPresets and reads
// commands on its standard input, answering "ok" to each:
//
//	set MS        answer MS milliseconds from now on
//	live PERIOD   answer the time since the last multiple of PERIOD ms of
//	              real time (a jiggler that moves every PERIOD)
//	garbage       answer a string instead of an integer
const standInEnv = "BONAFIDE_TEST_IDLE_STANDIN"

// standInPreset is a desktop's idle-time service.
type standInPreset struct {
	name, path, iface, member string
	sig                       string // "t", "u"; "" answers NotSupported
}

var standInPresets = map[string]standInPreset{
	// GNOME: mutter's IdleMonitor, milliseconds as uint64.
	"mutter": {"org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core", "org.gnome.Mutter.IdleMonitor", "GetIdletime", "t"},
	// KDE on X11: kscreenlocker, milliseconds as uint32.
	"kscreenlocker": {"org.kde.screensaver", "/ScreenSaver", "org.freedesktop.ScreenSaver", "GetSessionIdleTime", "u"},
	// KDE on Wayland: kscreenlocker answers NotSupported.
	"kscreenlocker-wayland": {"org.kde.screensaver", "/ScreenSaver", "org.freedesktop.ScreenSaver", "GetSessionIdleTime", ""},
	// The gnome-screensaver line (MATE …) under the freedesktop name:
	// seconds since the session was declared idle; never asked.
	"freedesktop": {"org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver", "GetSessionIdleTime", "u"},
}

// runStandIn is the stand-in process's main.
func runStandIn(preset string) error {
	p, ok := standInPresets[preset]
	if !ok {
		return fmt.Errorf("unknown preset %q", preset)
	}
	addr, ok := strings.CutPrefix(os.Getenv("DBUS_SESSION_BUS_ADDRESS"), "unix:path=")
	if !ok {
		return errors.New("DBUS_SESSION_BUS_ADDRESS is not unix:path=")
	}
	c, err := dialBus(addr)
	if err != nil {
		return err
	}
	if _, err := c.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", nil); err != nil {
		return err
	}
	var e enc
	e.str(p.name)
	e.u32(4) // DBUS_NAME_FLAG_DO_NOT_QUEUE
	m, err := c.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su", e.b)
	if err != nil {
		return err
	}
	if len(m.body) != 4 || binary.LittleEndian.Uint32(m.body) != 1 {
		return fmt.Errorf("RequestName %s: not the primary owner (%x)", p.name, m.body)
	}

	var mu sync.Mutex
	mode, value := "set", uint64(0)
	start := time.Now()
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			mu.Lock()
			if len(f) > 0 {
				mode = f[0]
			}
			if len(f) > 1 {
				value, _ = strconv.ParseUint(f[1], 10, 64)
			}
			start = time.Now()
			mu.Unlock()
			fmt.Println("ok")
		}
		os.Exit(0) // the test ended
	}()
	fmt.Println("ready")
	for {
		m, err := c.read()
		if err != nil {
			return err
		}
		if m.typ != 1 || m.flags&1 != 0 { // method calls that want a reply
			continue
		}
		if m.path != p.path || m.iface != p.iface || m.member != p.member {
			c.replyError(m, "org.freedesktop.DBus.Error.UnknownMethod", "no such method")
			continue
		}
		if p.sig == "" {
			c.replyError(m, "org.freedesktop.DBus.Error.NotSupported", "GetSessionIdleTime is not supported on this platform")
			continue
		}
		mu.Lock()
		ms := value
		switch mode {
		case "live":
			ms = uint64(time.Since(start).Milliseconds()) % max(value, 1)
		case "garbage":
			var e enc
			e.str("42")
			c.reply(m, "s", e.b)
			mu.Unlock()
			continue
		}
		mu.Unlock()
		var e enc
		if p.sig == "t" {
			e.u64(ms)
		} else {
			e.u32(uint32(ms))
		}
		c.reply(m, p.sig, e.b)
	}
}

// busConn is a connection to a bus, little-endian only (as the test's
// dbus-daemon on amd64 and arm64 writes).
type busConn struct {
	c      net.Conn
	r      *bufio.Reader
	serial uint32
	mu     sync.Mutex
}

// dialBus connects and authenticates with EXTERNAL: the socket's peer
// credentials, the process's user id in hex of its decimal digits.
func dialBus(path string) (*busConn, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	uid := hex.EncodeToString([]byte(strconv.Itoa(os.Getuid())))
	if _, err := fmt.Fprintf(c, "\x00AUTH EXTERNAL %s\r\n", uid); err != nil {
		return nil, err
	}
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "OK ") {
		return nil, fmt.Errorf("auth: %q %v", line, err)
	}
	if _, err := io.WriteString(c, "BEGIN\r\n"); err != nil {
		return nil, err
	}
	return &busConn{c: c, r: r}, nil
}

// message is the part of a D-Bus message the stand-in uses.
type message struct {
	typ, flags                       byte
	serial, replySerial              uint32
	path, iface, member, sender, sig string
	errName                          string
	body                             []byte
}

// enc encodes D-Bus values, aligned from its start (the message's, or
// the body's: the body starts 8-aligned, so the two agree).
type enc struct{ b []byte }

func (e *enc) pad(n int) {
	for len(e.b)%n != 0 {
		e.b = append(e.b, 0)
	}
}
func (e *enc) u32(v uint32) { e.pad(4); e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.pad(8); e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) str(s string) { e.u32(uint32(len(s))); e.b = append(append(e.b, s...), 0) }
func (e *enc) sig(s string) { e.b = append(append(append(e.b, byte(len(s))), s...), 0) }

// field appends a header field (code, variant) of a string-like type.
func (e *enc) field(code byte, typ, v string) {
	e.pad(8)
	e.b = append(e.b, code)
	e.sig(typ)
	if typ == "g" {
		e.sig(v)
	} else {
		e.str(v)
	}
}

func (c *busConn) write(m message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serial++
	e := enc{b: []byte{'l', m.typ, m.flags, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}
	binary.LittleEndian.PutUint32(e.b[4:], uint32(len(m.body)))
	binary.LittleEndian.PutUint32(e.b[8:], c.serial)
	for _, f := range []struct {
		code     byte
		typ, val string
	}{{1, "o", m.path}, {2, "s", m.iface}, {3, "s", m.member}, {4, "s", m.errName}, {6, "s", m.sender}, {8, "g", m.sig}} {
		if f.val != "" {
			e.field(f.code, f.typ, f.val)
		}
	}
	if m.replySerial != 0 {
		e.pad(8)
		e.b = append(e.b, 5)
		e.sig("u")
		e.u32(m.replySerial)
	}
	binary.LittleEndian.PutUint32(e.b[12:], uint32(len(e.b)-16))
	e.pad(8)
	_, err := c.c.Write(append(e.b, m.body...))
	return err
}

// call sends a method call (m.sender is used as the destination) and
// returns its reply, skipping what arrives before it.
func (c *busConn) call(dest, path, iface, member, sig string, body []byte) (message, error) {
	if err := c.write(message{typ: 1, path: path, iface: iface, member: member, sender: dest, sig: sig, body: body}); err != nil {
		return message{}, err
	}
	want := c.serial
	for {
		m, err := c.read()
		if err != nil {
			return message{}, err
		}
		if m.replySerial != want {
			continue
		}
		if m.typ == 3 {
			return m, fmt.Errorf("%s.%s: %s", iface, member, m.errName)
		}
		return m, nil
	}
}

func (c *busConn) reply(to message, sig string, body []byte) {
	_ = c.write(message{typ: 2, replySerial: to.serial, sender: to.sender, sig: sig, body: body})
}

func (c *busConn) replyError(to message, name, text string) {
	var e enc
	e.str(text)
	_ = c.write(message{typ: 3, replySerial: to.serial, sender: to.sender, errName: name, sig: "s", body: e.b})
}

// read reads one message. In a message it writes, "sender" is the
// destination field; in one it reads, the sender field.
func (c *busConn) read() (message, error) {
	fixed := make([]byte, 16)
	if _, err := io.ReadFull(c.r, fixed); err != nil {
		return message{}, err
	}
	if fixed[0] != 'l' {
		return message{}, errors.New("big-endian message")
	}
	bodyLen := binary.LittleEndian.Uint32(fixed[4:])
	fieldsLen := binary.LittleEndian.Uint32(fixed[12:])
	if bodyLen > 1<<20 || fieldsLen > 1<<16 {
		return message{}, errors.New("message too large")
	}
	hdr := 16 + int(fieldsLen)
	rest := make([]byte, (hdr+7)/8*8-16+int(bodyLen))
	if _, err := io.ReadFull(c.r, rest); err != nil {
		return message{}, err
	}
	b := append(fixed, rest...)
	m := message{typ: b[1], flags: b[2], serial: binary.LittleEndian.Uint32(b[8:])}
	m.body = b[(hdr+7)/8*8:]
	for pos := 16; pos < hdr; {
		pos = (pos + 7) / 8 * 8
		if pos+3 > hdr {
			break
		}
		code, n := b[pos], int(b[pos+1])
		typ := string(b[pos+2 : pos+2+n])
		pos += 3 + n
		var s string
		switch typ {
		case "o", "s":
			pos = (pos + 3) / 4 * 4
			l := int(binary.LittleEndian.Uint32(b[pos:]))
			s = string(b[pos+4 : pos+4+l])
			pos += 5 + l
		case "g":
			l := int(b[pos])
			s = string(b[pos+1 : pos+1+l])
			pos += 2 + l
		case "u":
			pos = (pos + 3) / 4 * 4
			if code == 5 {
				m.replySerial = binary.LittleEndian.Uint32(b[pos:])
			}
			pos += 4
		default:
			return message{}, fmt.Errorf("header field type %q", typ)
		}
		switch code {
		case 1:
			m.path = s
		case 2:
			m.iface = s
		case 3:
			m.member = s
		case 4:
			m.errName = s
		case 7:
			m.sender = s
		case 8:
			m.sig = s
		}
	}
	return m, nil
}
