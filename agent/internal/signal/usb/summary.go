package usb

import (
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Summary condenses the descriptor into the wire HidSummary:
//
//   - keyboard: a Generic Desktop Keyboard (0x06) application;
//   - relative_mouse: a Mouse or Pointer application with relative X/Y;
//   - absolute_pointer: a Generic Desktop Mouse or Pointer application
//     with absolute X/Y (what IP-KVMs emulate). Joysticks and gamepads
//     report absolute X/Y too and are not counted;
//   - digitizer: a Digitizers-page application with absolute X/Y (pen
//     tablets, touch screens);
//   - consumer_control: a Consumer page Consumer Control (0x01)
//     application.
//
// A nil descriptor yields an all-false summary.
func (r *ReportDescriptor) Summary() *agentv1.HidSummary {
	s := &agentv1.HidSummary{}
	if r == nil {
		return s
	}
	for i := range r.Applications {
		a := &r.Applications[i]
		switch {
		case a.Is(PageGenericDesktop, UsageKeyboard):
			s.Keyboard = true
		case a.Is(PageConsumer, UsageConsumerControl):
			s.ConsumerControl = true
		}
		if a.IsPointer() {
			if a.RelativeXY {
				s.RelativeMouse = true
			}
			if a.AbsoluteXY {
				if a.Page == PageDigitizer {
					s.Digitizer = true
				} else {
					s.AbsolutePointer = true
				}
			}
		}
	}
	return s
}

// Summarize sums the summaries of several descriptors, e.g. of all HID
// interfaces of one USB device (a gadget-based IP-KVM exposes keyboard and
// mouse as separate interfaces). Nil descriptors are skipped.
func Summarize(rds ...*ReportDescriptor) *agentv1.HidSummary {
	s := &agentv1.HidSummary{}
	for _, r := range rds {
		t := r.Summary()
		s.Keyboard = s.Keyboard || t.Keyboard
		s.RelativeMouse = s.RelativeMouse || t.RelativeMouse
		s.AbsolutePointer = s.AbsolutePointer || t.AbsolutePointer
		s.ConsumerControl = s.ConsumerControl || t.ConsumerControl
		s.Digitizer = s.Digitizer || t.Digitizer
	}
	return s
}
