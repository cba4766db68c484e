package bolt

import "os"

// syncDir makes the names in dir durable: a file created there survives a
// power cut only once its directory is synced too.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
