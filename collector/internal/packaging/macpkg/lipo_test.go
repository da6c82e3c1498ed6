package macpkg

import (
	"bytes"
	"debug/macho"
	"encoding/binary"
	"testing"
)

// TestLipo joins real darwin/amd64 and darwin/arm64 Go builds and reads
// the result back with debug/macho.
func TestLipo(t *testing.T) {
	amd, arm := buildDarwin(t, "amd64"), buildDarwin(t, "arm64")
	fat, err := Lipo(arm, amd) // argument order does not matter
	if err != nil {
		t.Fatal(err)
	}
	again, err := Lipo(amd, arm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fat, again) {
		t.Error("Lipo output depends on the argument order")
	}
	ff, err := macho.NewFatFile(bytes.NewReader(fat))
	if err != nil {
		t.Fatalf("debug/macho: %v", err)
	}
	if ff.Magic != macho.MagicFat || len(ff.Arches) != 2 {
		t.Fatalf("magic %#x, %d arches", ff.Magic, len(ff.Arches))
	}
	want := []struct {
		cpu  macho.Cpu
		data []byte
	}{{macho.CpuAmd64, amd}, {macho.CpuArm64, arm}}
	for i, a := range ff.Arches {
		if a.Cpu != want[i].cpu {
			t.Errorf("arch %d: %v, want %v", i, a.Cpu, want[i].cpu)
		}
		if a.Align != 14 || a.Offset%(1<<14) != 0 {
			t.Errorf("%v: offset %d align 2^%d, want 16 KiB alignment", a.Cpu, a.Offset, a.Align)
		}
		if !bytes.Equal(fat[a.Offset:a.Offset+a.Size], want[i].data) {
			t.Errorf("%v: the slice is not the thin binary", a.Cpu)
		}
		if a.Type != macho.TypeExec {
			t.Errorf("%v: file type %v", a.Cpu, a.Type)
		}
	}
	kind, arches := machArches(fat)
	if kind != bomExecFat || len(arches) != 2 || arches[1].CPUType != CPUTypeARM64 ||
		arches[1].Size != uint32(len(arm)) || arches[1].Checksum != cksum(arm) {
		t.Errorf("Bom arch info: kind %d %+v", kind, arches)
	}
}

func TestLipoRefuses(t *testing.T) {
	arm := buildDarwin(t, "arm64")
	if _, err := Lipo(arm, arm); err == nil {
		t.Error("two arm64 slices accepted")
	}
	if _, err := Lipo(arm, []byte("\x7fELF not a mach-o file at all......")); err == nil {
		t.Error("an ELF file accepted")
	}
	if _, err := Lipo(); err == nil {
		t.Error("no input accepted")
	}
}

func TestParseFatBounds(t *testing.T) {
	b := make([]byte, 28)
	binary.BigEndian.PutUint32(b, fatMagic)
	binary.BigEndian.PutUint32(b[4:], 1)
	binary.BigEndian.PutUint32(b[16:], 20) // offset
	binary.BigEndian.PutUint32(b[20:], 9)  // size past the end
	if _, err := parseFat(b); err == nil {
		t.Error("slice past the end accepted")
	}
	binary.BigEndian.PutUint32(b[4:], 51) // a Java class file's version
	if _, err := parseFat(b); err == nil {
		t.Error("Java class file taken for a universal binary")
	}
}

// FuzzMachArches feeds arbitrary bytes to the Mach-O recognizer the Bom
// writer runs on every payload file.
func FuzzMachArches(f *testing.F) {
	fat := make([]byte, 48)
	binary.BigEndian.PutUint32(fat, fatMagic)
	binary.BigEndian.PutUint32(fat[4:], 1)
	binary.BigEndian.PutUint32(fat[16:], 28)
	binary.BigEndian.PutUint32(fat[20:], 20)
	f.Add(fat)
	f.Add([]byte{0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 3, 0, 0, 0})
	f.Add([]byte("plain text"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, arches := machArches(b)
		if kind == 0 && arches != nil {
			t.Fatal("architectures for a file that is not Mach-O")
		}
		if fa, err := parseFat(b); err == nil {
			for _, a := range fa {
				if uint64(a.Offset)+uint64(a.Size) > uint64(len(b)) {
					t.Fatal("slice out of bounds")
				}
			}
		}
	})
}
