package macpkg

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Universal ("fat") Mach-O files, as <mach-o/fat.h> defines them: a
// big-endian header {magic 0xcafebabe, count}, then per architecture
// {cputype, cpusubtype, offset, size, align (a power of two)}, then the
// thin files at their offsets.

const (
	fatMagic    = 0xcafebabe
	machMagic64 = 0xfeedfacf // little-endian in the file, as on x86_64 and arm64
	machMagic32 = 0xfeedface
	// fatAlignLog2 aligns every slice to 16 KiB, the arm64 page size (lipo
	// uses the same for arm64 and 4 KiB for x86_64; 16 KiB suits both).
	fatAlignLog2 = 14
	// fatMaxArches bounds the count so that a Java class file (same magic,
	// where the count field holds the class file version, at least 45) is
	// not taken for a universal binary; file(1) uses the same test.
	fatMaxArches = 20
)

// Mach-O CPU types (<mach/machine.h>).
const (
	CPUTypeX86_64 = 0x01000007
	CPUTypeARM64  = 0x0100000c
)

// fatArch is one fat_arch entry.
type fatArch struct {
	CPUType, CPUSubtype, Offset, Size, Align uint32
}

// Lipo joins thin 64-bit Mach-O files into one universal binary, like
// `lipo -create`. Slices are ordered by CPU type, so the output does not
// depend on the argument order; two slices for the same CPU type are an
// error.
func Lipo(thin ...[]byte) ([]byte, error) {
	if len(thin) == 0 {
		return nil, errors.New("lipo: no input")
	}
	type slice struct {
		cpu, sub uint32
		data     []byte
	}
	var in []slice
	for i, b := range thin {
		cpu, sub, err := MachCPU(b)
		if err != nil {
			return nil, fmt.Errorf("lipo: input %d: %w", i+1, err)
		}
		in = append(in, slice{cpu, sub, b})
	}
	slices.SortFunc(in, func(a, b slice) int { return cmp.Compare(a.cpu, b.cpu) })
	for i := 1; i < len(in); i++ {
		if in[i].cpu == in[i-1].cpu {
			return nil, fmt.Errorf("lipo: two inputs for CPU type %#x", in[i].cpu)
		}
	}
	const align = 1 << fatAlignLog2
	var out bytes.Buffer
	be32(&out, fatMagic)
	be32(&out, uint32(len(in)))
	off := uint64(8 + 20*len(in))
	for _, s := range in {
		off = (off + align - 1) &^ (align - 1)
		if off+uint64(len(s.data)) > 1<<32-1 {
			return nil, errors.New("lipo: universal binary over 4 GiB")
		}
		for _, v := range []uint32{s.cpu, s.sub, uint32(off), uint32(len(s.data)), fatAlignLog2} {
			be32(&out, v)
		}
		off += uint64(len(s.data))
	}
	for _, s := range in {
		if pad := (align - out.Len()%align) % align; pad > 0 {
			out.Write(make([]byte, pad))
		}
		out.Write(s.data)
	}
	return out.Bytes(), nil
}

// MachCPU returns the CPU type and subtype of a thin 64-bit little-endian
// Mach-O file (what Go builds for darwin/amd64 and darwin/arm64).
func MachCPU(b []byte) (cpu, subtype uint32, err error) {
	if len(b) < 32 || binary.LittleEndian.Uint32(b) != machMagic64 {
		return 0, 0, errors.New("not a 64-bit Mach-O file")
	}
	return binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:]), nil
}

// parseFat reads the architecture table of a universal binary, checking
// that every slice lies inside b.
func parseFat(b []byte) ([]fatArch, error) {
	if len(b) < 8 || binary.BigEndian.Uint32(b) != fatMagic {
		return nil, errors.New("not a universal binary")
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n == 0 || n > fatMaxArches || uint64(len(b)) < 8+20*uint64(n) {
		return nil, errors.New("not a universal binary")
	}
	arches := make([]fatArch, n)
	for i := range arches {
		p := b[8+20*i:]
		a := fatArch{
			CPUType:    binary.BigEndian.Uint32(p),
			CPUSubtype: binary.BigEndian.Uint32(p[4:]),
			Offset:     binary.BigEndian.Uint32(p[8:]),
			Size:       binary.BigEndian.Uint32(p[12:]),
			Align:      binary.BigEndian.Uint32(p[16:]),
		}
		if uint64(a.Offset)+uint64(a.Size) > uint64(len(b)) {
			return nil, fmt.Errorf("universal binary: slice %d out of bounds", i)
		}
		arches[i] = a
	}
	return arches, nil
}
