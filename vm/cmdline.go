package vm

// QEMUCommand is the command line QEMU was started with, program first; nil
// for a machine without a QEMU process.
func (m *Machine) QEMUCommand() []string {
	if m.cmd == nil {
		return nil
	}
	return append([]string(nil), m.cmd.Args...)
}
