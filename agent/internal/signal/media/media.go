// Package media lists the machine's video and audio capture devices by
// name, and the kernel modules, DirectShow filters, CoreMediaIO plug-ins,
// camera extensions and audio drivers that provide them: where virtual
// cameras and microphones (and the face-swap and voice-changing tools that
// feed them) show up.
//
// Privacy: names only. No device is opened, no frame or sample is read.
package media

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bonafide-sec/bonafide/agent/internal/fsx"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Sources of a MediaDevice.
const (
	SourceV4L2            = "v4l2"
	SourceKernelModule    = "kernel_module"
	SourceALSA            = "alsa"
	SourceDirectShow      = "directshow"
	SourceMFVirtualCamera = "mf_virtual_camera"
	SourceAudioEndpoint   = "audio_endpoint"
	SourceDALPlugin       = "dal_plugin"
	SourceCameraExtension = "camera_extension"
	SourceHALPlugin       = "hal_plugin"
)

const (
	maxDevices  = 256     // devices reported per scan
	maxName     = 256     // bytes of a name kept
	maxLocation = 512     // bytes of a location kept
	maxAttr     = 4096    // longest sysfs attribute read
	maxProcFile = 1 << 20 // longest /proc file read
	maxPlist    = 1 << 20 // longest Info.plist read
	maxEntries  = 4096    // directory entries looked at per directory
)

// virtualModules are the Linux kernel modules that make virtual cameras
// and sound cards (v4l2loopback: github.com/umlaeute/v4l2loopback; akvcam:
// github.com/webcamoid/akvcam; snd_aloop: the kernel's ALSA loopback).
// Only these are reported, never the rest of the module list.
var virtualModules = []string{"v4l2loopback", "akvcam", "snd_aloop"}

// Collect reads the media devices of the machine whose filesystem root is
// root ("" or "/" for the live system). Under any other root it reads the
// Linux and macOS layouts from files whatever the OS, so that fixture
// roots work everywhere.
func Collect(ctx context.Context, root string) (*agentv1.Media, error) {
	if root != "" && root != "/" {
		fsys := os.DirFS(root)
		devs := append(ReadLinuxFS(fsys), ReadMacFS(fsys)...)
		return &agentv1.Media{Devices: capDevices(devs)}, nil
	}
	devs, err := readLive(ctx)
	if err != nil {
		return nil, err
	}
	return &agentv1.Media{Devices: capDevices(devs)}, nil
}

// capDevices sanitises names and locations, drops empty and repeated
// devices and bounds the list.
func capDevices(devs []*agentv1.MediaDevice) []*agentv1.MediaDevice {
	out := make([]*agentv1.MediaDevice, 0, len(devs))
	seen := map[string]bool{}
	for _, d := range devs {
		d.Name = clean(d.Name, maxName)
		d.Location = clean(d.Location, maxLocation)
		key := d.Kind + "\x00" + d.Source + "\x00" + d.Name + "\x00" + d.Location
		if d.Name == "" || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, d)
		if len(out) == maxDevices {
			break
		}
	}
	return out
}

// clean makes s valid UTF-8 without control characters, trimmed and at
// most limit bytes (cut at a rune boundary).
func clean(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	for len(s) > limit {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// ReadLinuxFS reads the Linux layout of fsys (rooted at /): the V4L2
// devices' names, the virtual-media kernel modules loaded and the ALSA
// sound cards. Unreadable parts are skipped: a machine without them has
// no such devices.
func ReadLinuxFS(fsys fs.FS) []*agentv1.MediaDevice {
	var out []*agentv1.MediaDevice
	ents, _ := fs.ReadDir(fsys, "sys/class/video4linux")
	for i, e := range ents {
		if i == maxEntries {
			break
		}
		dir := path.Join("sys/class/video4linux", e.Name())
		b, err := fsx.ReadCapped(fsys, path.Join(dir, "name"), maxAttr)
		if err != nil {
			continue
		}
		out = append(out, &agentv1.MediaDevice{Kind: "video", Name: string(b), Source: SourceV4L2, Location: "/" + dir})
	}
	if b, err := fsx.ReadCapped(fsys, "proc/modules", maxProcFile); err == nil {
		for _, m := range ParseModules(b) {
			kind := "video"
			if strings.HasPrefix(m, "snd_") {
				kind = "audio"
			}
			out = append(out, &agentv1.MediaDevice{Kind: kind, Name: m, Source: SourceKernelModule, Location: "/proc/modules"})
		}
	}
	if b, err := fsx.ReadCapped(fsys, "proc/asound/cards", maxProcFile); err == nil {
		for _, c := range ParseALSACards(b) {
			out = append(out, &agentv1.MediaDevice{Kind: "audio", Name: c, Source: SourceALSA, Location: "/proc/asound/cards"})
		}
	}
	return out
}

// ParseModules returns the virtual-media modules (virtualModules) listed in
// /proc/modules, in file order: the first field of each line.
func ParseModules(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), " ")
		if slices.Contains(virtualModules, name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// ParseALSACards returns the card ids of /proc/asound/cards, whose card
// lines read " 0 [PCH            ]: HDA-Intel - HDA Intel PCH" (the
// indented line after each is the card's long description).
func ParseALSACards(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		num, rest, ok := strings.Cut(line, " ")
		if !ok || num == "" || strings.Trim(num, "0123456789") != "" {
			continue
		}
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, "[") {
			continue
		}
		id, _, ok := strings.Cut(rest[1:], "]")
		if id = strings.TrimSpace(id); ok && id != "" {
			out = append(out, id)
		}
	}
	return out
}

// ReadMacFS reads the macOS layout of fsys (rooted at /): CoreMediaIO DAL
// plug-ins, camera extensions (system extensions whose Info.plist declares
// CMIOExtension) and Core Audio HAL plug-ins, by bundle name.
func ReadMacFS(fsys fs.FS) []*agentv1.MediaDevice {
	var out []*agentv1.MediaDevice
	bundles := func(dir, ext, kind, source string) {
		ents, _ := fs.ReadDir(fsys, dir)
		for i, e := range ents {
			if i == maxEntries {
				break
			}
			if strings.EqualFold(path.Ext(e.Name()), ext) {
				out = append(out, &agentv1.MediaDevice{Kind: kind, Name: e.Name(), Source: source, Location: "/" + path.Join(dir, e.Name())})
			}
		}
	}
	bundles("Library/CoreMediaIO/Plug-Ins/DAL", ".plugin", "video", SourceDALPlugin)
	bundles("Library/Audio/Plug-Ins/HAL", ".driver", "audio", SourceHALPlugin)
	// /Library/SystemExtensions/<UUID>/<bundle id>.systemextension holds
	// every activated system extension (network and endpoint-security
	// ones too); a camera extension's Info.plist has the CMIOExtension key.
	ids, _ := fs.ReadDir(fsys, "Library/SystemExtensions")
	for i, id := range ids {
		if i == maxEntries {
			break
		}
		if !id.IsDir() {
			continue
		}
		dir := path.Join("Library/SystemExtensions", id.Name())
		exts, _ := fs.ReadDir(fsys, dir)
		for j, e := range exts {
			if j == maxEntries {
				break
			}
			if !strings.EqualFold(path.Ext(e.Name()), ".systemextension") {
				continue
			}
			p := path.Join(dir, e.Name())
			b, err := fsx.ReadCapped(fsys, path.Join(p, "Contents/Info.plist"), maxPlist)
			if err == nil && IsCameraExtension(b) {
				out = append(out, &agentv1.MediaDevice{Kind: "video", Name: e.Name(), Source: SourceCameraExtension, Location: "/" + p})
			}
		}
	}
	return out
}

// IsCameraExtension reports whether an Info.plist (XML or binary) declares
// a CoreMediaIO camera extension: the CMIOExtension key, which Apple's
// camera-extension template puts in every such bundle.
func IsCameraExtension(plist []byte) bool {
	return bytes.Contains(plist, []byte("CMIOExtension"))
}
