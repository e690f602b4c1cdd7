package sign

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vigil-sensor/vigil/internal/atomicfile"
	"github.com/vigil-sensor/vigil/internal/owned"
)

// ChainIDSize is the size of a chain id: random at key creation, it is in every signature so
// a seal of one file (events) cannot stand in another's (untrusted telemetry).
const ChainIDSize = 16

// ChainID names one signed output's chain.
type ChainID [ChainIDSize]byte

func (c ChainID) String() string { return hex.EncodeToString(c[:]) }

// KeyDirMode and KeyMode: the private key is root's alone; KeyLogMode: the public key log is
// for anyone to copy and verify with.
const (
	KeyDirMode os.FileMode = 0o700
	KeyMode    os.FileMode = 0o600
	KeyLogMode os.FileMode = 0o644
)

// KeyPath is the private key of the output named name (the JSONL file's base name) in dir;
// KeyLogPath its public key log: the first public key (the one to pin) and every later one,
// each signed by the key before it.
func KeyPath(dir, name string) string    { return filepath.Join(dir, name+".key") }
func KeyLogPath(dir, name string) string { return filepath.Join(dir, name+".pub") }

// certDomain separates a key certificate's signed bytes from a seal's.
const certDomain = "vigil-key-v1\x00"

// Cert is one line of a key log: the public key of an epoch, signed (from epoch 1 on) by the
// key of the epoch before. Epoch 0's key is the root of trust a verifier pins.
type Cert struct {
	Chain ChainID
	Epoch uint64
	Key   ed25519.PublicKey
	Sig   []byte // empty at epoch 0
}

// certJSON is a Cert as a key log line.
type certJSON struct {
	Chain string `json:"chain_id"`
	Epoch uint64 `json:"epoch"`
	Key   string `json:"key"`
	Sig   string `json:"sig,omitempty"`
}

func (c Cert) marshal() ([]byte, error) {
	j := certJSON{Chain: c.Chain.String(), Epoch: c.Epoch, Key: base64.StdEncoding.EncodeToString(c.Key)}
	if len(c.Sig) > 0 {
		j.Sig = base64.StdEncoding.EncodeToString(c.Sig)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode key certificate: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseCert reads one key log line.
func ParseCert(line []byte) (Cert, error) {
	var j certJSON
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Cert{}, fmt.Errorf("key certificate: %w", err)
	}
	var c Cert
	if err := decodeHex(c.Chain[:], j.Chain); err != nil {
		return Cert{}, fmt.Errorf("key certificate: chain_id: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(j.Key)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return Cert{}, fmt.Errorf("key certificate: key is not a base64 ed25519 public key")
	}
	c.Epoch, c.Key = j.Epoch, key
	if j.Sig != "" {
		if c.Sig, err = base64.StdEncoding.DecodeString(j.Sig); err != nil || len(c.Sig) != ed25519.SignatureSize {
			return Cert{}, fmt.Errorf("key certificate: sig is not a base64 ed25519 signature")
		}
	}
	if (c.Epoch == 0) != (len(c.Sig) == 0) {
		return Cert{}, fmt.Errorf("key certificate: epoch %d with%s a signature", c.Epoch, map[bool]string{true: "", false: "out"}[len(c.Sig) > 0])
	}
	return c, nil
}

// ReadKeyLog reads a key log file (or a copy of its first line: the pinned key).
func ReadKeyLog(path string) ([]Cert, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key log: %w", err)
	}
	defer f.Close()
	var certs []Cert
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		c, err := ParseCert(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("read key log %s:%d: %w", path, n, err)
		}
		certs = append(certs, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read key log %s: %w", path, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("read key log %s: no key in it", path)
	}
	return certs, nil
}

// Pin is the key log's first line: the chain and its epoch 0 public key, what an admin keeps
// off the machine to verify with (vigil verify --key).
func Pin(dir, name string) (Cert, error) {
	certs, err := ReadKeyLog(KeyLogPath(dir, name))
	if err != nil {
		return Cert{}, err
	}
	if certs[0].Epoch != 0 {
		return Cert{}, fmt.Errorf("key log %s begins at epoch %d, not 0", KeyLogPath(dir, name), certs[0].Epoch)
	}
	return certs[0], nil
}

// PublicKey is the certificate's key in base64, as vigil verify --pubkey takes it.
func (c Cert) PublicKey() string { return base64.StdEncoding.EncodeToString(c.Key) }

// certMessage is what the key of epoch-1 signs to vouch for the key of epoch.
func certMessage(chain ChainID, epoch uint64, key ed25519.PublicKey) []byte {
	m := make([]byte, 0, len(certDomain)+ChainIDSize+8+ed25519.PublicKeySize)
	m = append(m, certDomain...)
	m = append(m, chain[:]...)
	m = binary.BigEndian.AppendUint64(m, epoch)
	return append(m, key...)
}

// keyFile is the private key file: the chain it signs, its epoch and the ed25519 seed.
type keyFile struct {
	Chain string `json:"chain_id"`
	Epoch uint64 `json:"epoch"`
	Seed  string `json:"seed"`
}

// keys is the current epoch's private key of one output, and where it is kept.
type keys struct {
	dir, name string
	chain     ChainID
	epoch     uint64
	priv      ed25519.PrivateKey
}

// loadOrCreateKeys opens the key of output name in dir, creating dir (0700), the key (0600)
// and the key log (0644) when there is none. created says a new key (and chain) was made.
// The directory must be the sensor's and only its: whoever can write to it can replace the
// key. Missing parents are made 0755: /var/lib/vigil also holds the hook's undelivered
// directory, which every user's `vigil hook` must reach.
func loadOrCreateKeys(dir, name string) (k *keys, created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, false, fmt.Errorf("create key directory: %w", err)
	}
	if err := os.Mkdir(dir, KeyDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, false, fmt.Errorf("create key directory: %w", err)
	}
	if err := owned.Dir(dir); err != nil {
		return nil, false, fmt.Errorf("key directory: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil {
		return nil, false, fmt.Errorf("key directory: %w", err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("key directory %s is %v: others could read or replace the key; want %v", dir, fi.Mode().Perm(), KeyDirMode)
	}
	k = &keys{dir: dir, name: name}
	b, err := readOwnFile(KeyPath(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return k, true, k.create()
	}
	if err != nil {
		return nil, false, err
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, false, fmt.Errorf("parse key %s: %w", KeyPath(dir, name), err)
	}
	seed, err := base64.StdEncoding.DecodeString(kf.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, false, fmt.Errorf("parse key %s: seed is not a base64 ed25519 seed", KeyPath(dir, name))
	}
	if err := decodeHex(k.chain[:], kf.Chain); err != nil {
		return nil, false, fmt.Errorf("parse key %s: chain_id: %w", KeyPath(dir, name), err)
	}
	k.epoch, k.priv = kf.Epoch, ed25519.NewKeyFromSeed(seed)
	clear(seed)
	return k, false, nil
}

// readOwnFile reads a file the effective uid owns, refusing a symlink, a non-regular file or
// one others may read (the key), and fixing nothing: a key that was readable may be known.
func readOwnFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if uid := owned.Owner(fi); uid != os.Geteuid() {
		return nil, fmt.Errorf("key %s is owned by uid %d, not by uid %d", path, uid, os.Geteuid())
	}
	if fi.Mode().Perm() != KeyMode {
		return nil, fmt.Errorf("key %s is %v, want %v: others may have read it; move it away to start a new key", path, fi.Mode().Perm(), KeyMode)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// create makes a new chain: its id, the epoch 0 key, the key log with that key (written
// first: a key whose public half is nowhere must never sign), then the private key. A key log
// left by a key that is gone is kept, renamed after its chain (OldKeyLogPath): the files that
// key signed still verify with it.
func (k *keys) create() error {
	if err := k.keepOldKeyLog(); err != nil {
		return err
	}
	if _, err := rand.Read(k.chain[:]); err != nil {
		return fmt.Errorf("new chain id: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	line, err := Cert{Chain: k.chain, Epoch: 0, Key: pub}.marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(KeyLogPath(k.dir, k.name), line, KeyLogMode); err != nil {
		return fmt.Errorf("write key log: %w", err)
	}
	k.epoch, k.priv = 0, priv
	if err := k.save(); err != nil {
		return err
	}
	return nil
}

// OldKeyLogPath is where the key log of chain goes when its key is gone and a new one is made.
func OldKeyLogPath(dir, name string, chain ChainID) string {
	return filepath.Join(dir, name+"."+chain.String()+".pub")
}

// keepOldKeyLog renames an existing key log after its chain; one whose first line cannot be
// read is renamed after the time instead, never overwritten.
func (k *keys) keepOldKeyLog() error {
	path := KeyLogPath(k.dir, k.name)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	to := path + ".old"
	if certs, err := ReadKeyLog(path); err == nil {
		to = OldKeyLogPath(k.dir, k.name, certs[0].Chain)
	}
	if err := os.Rename(path, to); err != nil {
		return fmt.Errorf("keep the key log of the previous key: %w", err)
	}
	return nil
}

// save writes the current key over the key file.
func (k *keys) save() error {
	b, err := json.Marshal(keyFile{Chain: k.chain.String(), Epoch: k.epoch, Seed: base64.StdEncoding.EncodeToString(k.priv.Seed())})
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := atomicfile.Write(KeyPath(k.dir, k.name), append(b, '\n'), KeyMode); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

// evolve replaces the key by next: the key log gets next's certificate (signed by the current
// key, synced) before the key file is replaced (atomically, synced), and only then is the
// current key forgotten. A crash between the two leaves the current key in place and a
// certificate for a key never used, which a verifier tolerates (several keys may be vouched
// for one epoch; only the current key could have vouched for them).
func (k *keys) evolve(nextPub ed25519.PublicKey, next ed25519.PrivateKey) error {
	epoch := k.epoch + 1
	cert := Cert{Chain: k.chain, Epoch: epoch, Key: nextPub, Sig: ed25519.Sign(k.priv, certMessage(k.chain, epoch, nextPub))}
	line, err := cert.marshal()
	if err != nil {
		return err
	}
	if err := appendSync(KeyLogPath(k.dir, k.name), line); err != nil {
		return fmt.Errorf("append to key log: %w", err)
	}
	old := k.priv
	k.priv, k.epoch = next, epoch
	if err := k.save(); err != nil {
		k.priv, k.epoch = old, epoch-1
		return err
	}
	clear(old) // forward security: the old epoch's key is gone from memory too
	return nil
}

// appendSync appends b to the key log and syncs it. A key log that was deleted is begun again
// from this certificate: the seals in the files vouch for the keys before it, and a verifier
// that needs its missing first lines says so (key-chain).
func appendSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, KeyLogMode)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || owned.Owner(fi) != os.Geteuid() {
		f.Close()
		return fmt.Errorf("%s is not a regular file of uid %d", path, os.Geteuid())
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// decodeHex decodes exactly len(dst) bytes of lowercase hex.
func decodeHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, got %d", 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return err
	}
	if hex.EncodeToString(dst) != s {
		return errors.New("want lowercase hex")
	}
	return nil
}
