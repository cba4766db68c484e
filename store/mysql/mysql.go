package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	gomysql "github.com/go-sql-driver/mysql"

	"gearmand/store"
	"gearmand/store/internal/queuetable"
)

// Defaults of C gearmand 1.1.20's MySQL module (-q MySQL).
const (
	DefaultHost  = "localhost"
	DefaultPort  = 3306
	DefaultTable = queuetable.DefaultTable // gearman_queue
)

// Defaults of gearmand's libdrizzle module (-q libdrizzle, gearmand 0.x
// to 1.1). Its port was Drizzle's 4427 in 0.x; with --libdrizzle-mysql, and
// in 1.1's libdrizzle 5.1, MySQL's 3306, the only protocol this package
// speaks.
const (
	DrizzleDefaultUser     = "root"
	DrizzleDefaultDatabase = "gearman"
	DrizzleDefaultTable    = "queue"
)

// DefaultSocket is the Unix socket used for the host "localhost" when no
// socket is given: Debian's, as its libmariadb (which C gearmand links)
// uses.
const DefaultSocket = "/run/mysqld/mysqld.sock"

// DefaultTimeout bounds each network read, write and connection attempt.
const DefaultTimeout = 10 * time.Second

// Module selects which gearmand queue module's spellings and habits a
// Config follows.
type Module int

const (
	// ModuleMySQL is gearmand 1.1's -q MySQL (flags --mysql-*).
	ModuleMySQL Module = iota
	// ModuleLibdrizzle is gearmand 0.x's -q libdrizzle (flags
	// --libdrizzle-*): it creates the database when it is missing and
	// creates the table with when_to_run BIGINT.
	ModuleLibdrizzle
)

func (m Module) flagPrefix() string {
	if m == ModuleLibdrizzle {
		return "--libdrizzle-"
	}
	return "--mysql-"
}

// Config says where the queue table is. The zero value, after
// WithDefaults, is C gearmand's -q MySQL with no other flag (which then
// fails: it names no database).
type Config struct {
	// Module is the gearmand module whose flags set this Config; errors
	// name its flags (--mysql-user or --libdrizzle-user).
	Module Module
	// Host is the server's name or address (--mysql-host, default
	// "localhost"). As with libmysqlclient, "localhost" means the Unix
	// socket (Socket, or DefaultSocket), not TCP.
	Host string
	// Port is the server's TCP port (--mysql-port, default 3306).
	Port int
	// Socket is a Unix socket to connect to instead of Host and Port
	// (--libdrizzle-uds; -q MySQL has no flag for it).
	Socket string
	// User logs in (--mysql-user, default "": the name of the user this
	// process runs as, as libmysqlclient does; --libdrizzle-user, default
	// root).
	User string
	// Password is User's password (--mysql-password, default none).
	Password string
	// Database holds the queue table (--mysql-db: no default, required;
	// --libdrizzle-db, default gearman, created when missing).
	Database string
	// Table is the queue table (--mysql-table, default gearman_queue;
	// --libdrizzle-table, default queue).
	Table string
	// Timeout bounds each connection attempt and each network read and
	// write, so that a server that stops answering makes an operation
	// fail with store.ErrUnavailable instead of hanging. 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Logger receives what an operator should know. nil: slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with gearmand's default for every field left at
// its zero value.
func (c Config) WithDefaults() Config {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Module == ModuleLibdrizzle {
		if c.User == "" {
			c.User = DrizzleDefaultUser
		}
		if c.Database == "" {
			c.Database = DrizzleDefaultDatabase
		}
		if c.Table == "" {
			c.Table = DrizzleDefaultTable
		}
	}
	if c.User == "" {
		if u, err := user.Current(); err == nil {
			c.User = u.Username
		}
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// errNoDatabase is Open's error for a Config without a database.
func errNoDatabase(c *Config) error {
	return fmt.Errorf("mysql: no database given: name the one that holds (or will hold) the queue table with %s", c.flag("db"))
}

// flag names one of the module's flags: flag("user") is "--mysql-user".
func (c *Config) flag(name string) string { return c.Module.flagPrefix() + name }

// addr is the network and address to dial.
func (c *Config) addr() (network, address string) {
	switch {
	case c.Socket != "":
		return "unix", c.Socket
	case c.Host == "localhost":
		return "unix", DefaultSocket
	default:
		return "tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	}
}

// where names the server and database in messages, without secrets.
func (c *Config) where() string {
	_, addr := c.addr()
	return fmt.Sprintf("database %s on %s", c.Database, addr)
}

// Store is the queue table of a MySQL or MariaDB server as a store.Store.
// It is safe for concurrent use and implements store.Corruption.
type Store struct {
	*queuetable.Store
	cfg       Config
	maxRecord int // bytes of a record's fields the server takes in one statement
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Corruption = (*Store)(nil)
)

// Open connects to the server of cfg (after WithDefaults), checks the
// login and the database, and opens the queue table: created as C
// gearmand creates it when absent, completed with this server's nullable
// columns, refused (and left unchanged) when it is in another layout. Its
// errors name the flag to fix; an unreachable server's wraps
// store.ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if cfg.Database == "" {
		return nil, errNoDatabase(&cfg)
	}
	if cfg.Module == ModuleLibdrizzle {
		if err := createDatabase(ctx, &cfg); err != nil {
			return nil, err
		}
	}
	db := sql.OpenDB(connector(&cfg, cfg.Database))
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	d, maxPacket, err := inspect(ctx, db, &cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	qt, err := queuetable.Open(ctx, db, d, queuetable.Config{
		Table:     cfg.Table,
		TableFlag: cfg.flag("table"),
		Where:     cfg.where(),
		Logger:    cfg.Logger,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: qt, cfg: cfg, maxRecord: int(maxPacket) - packetOverhead}, nil
}

// packetOverhead is room left in max_allowed_packet for a statement's
// text and the framing of its parameters.
const packetOverhead = 64 << 10

// errRecordTooLarge is a record Apply refuses before sending it: the
// server would refuse it and drop the connection, which the client may
// see as an outage instead of an error.
var errRecordTooLarge = errors.New("record larger than the server's max_allowed_packet")

// Apply is queuetable's Apply (see the package doc), after refusing, with
// store.ErrTooLarge and without sending anything, a batch with a record
// that the server's max_allowed_packet cannot hold.
func (s *Store) Apply(ctx context.Context, b store.Batch) error {
	for i := range b.Adds {
		r := &b.Adds[i]
		if n := len(r.Data) + len(r.Function) + len(r.Unique) + len(r.Handle) + len(r.Reducer); n > s.maxRecord {
			return interpret(fmt.Errorf("job %d: %d bytes: %w", r.Seq, n, errRecordTooLarge), &s.cfg)
		}
	}
	return s.Store.Apply(ctx, b)
}

// connector makes the connector of cfg for database: go-sql-driver's,
// with every new connection's session set up by sessionConnector.
func connector(cfg *Config, database string) driver.Connector {
	mc := gomysql.NewConfig()
	mc.User, mc.Passwd = cfg.User, cfg.Password
	mc.Net, mc.Addr = cfg.addr()
	mc.DBName = database
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout
	// Apply's statements are prepared once per connection and size
	// (queuetable keeps them) and take the binary protocol: blobs unescaped,
	// the larger ones as long data. The other statements with parameters
	// (Replay's reads, Open's) take one round trip instead of prepare,
	// execute and close: the driver writes the parameters into the text,
	// or prepares it after all if that text would pass
	// max_allowed_packet.
	mc.InterpolateParams = true
	mc.Logger = quietLogger{}
	// The only error NewConnector returns is for a Config that FormatDSN
	// could not write, which this one is not.
	c, err := gomysql.NewConnector(mc)
	if err != nil {
		panic(err)
	}
	return sessionConnector{c}
}

// session is run on every new connection:
//   - READ COMMITTED, so that an Apply's DELETE of Seqs that are not
//     stored takes no gap locks, which would deadlock concurrent Applies
//     inserting into the same gaps under REPEATABLE READ;
//   - strict mode, so that a value too long for its column, or not in its
//     character set, fails the statement instead of being cut or replaced
//     with '?'.
var session = []string{
	"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
	"SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
}

// sessionConnector runs session on each connection it makes.
type sessionConnector struct{ driver.Connector }

func (c sessionConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	for _, stmt := range session {
		if _, err = conn.(driver.ExecerContext).ExecContext(ctx, stmt, nil); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// quietLogger drops go-sql-driver's own log lines (a dropped idle
// connection, a failed read): the errors reach the caller, mapped.
type quietLogger struct{}

func (quietLogger) Print(...any) {}

// createDatabase creates cfg.Database if it is missing, as gearmand's
// libdrizzle module does.
func createDatabase(ctx context.Context, cfg *Config) error {
	db := sql.OpenDB(connector(cfg, ""))
	defer db.Close()
	_, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(cfg.Database))
	return interpret(err, cfg)
}

// column is what inspect learns of one of C's columns.
type column struct {
	dataType  string // "varchar", "int", "bigint", ...
	charset   string // "" for a non-text column
	maxLength int64  // in characters for text, bytes for binary
}

// inspect checks that the server answers and lets cfg's user in to the
// database, reads the layout of C's columns if the table exists, and
// returns the dialect for it.
func inspect(ctx context.Context, db *sql.DB, cfg *Config) (d *queuetable.Dialect, maxPacket int64, err error) {
	var charset string
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet, @@character_set_database").Scan(&maxPacket, &charset); err != nil {
		return nil, 0, interpret(err, cfg)
	}
	rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COALESCE(CHARACTER_SET_NAME, ''), "+
		"COALESCE(CHARACTER_MAXIMUM_LENGTH, 0) FROM information_schema.COLUMNS "+
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", cfg.Table)
	if err != nil {
		return nil, 0, interpret(err, cfg)
	}
	defer rows.Close()
	cols := map[string]column{}
	for rows.Next() {
		var table, name string
		var c column
		if err := rows.Scan(&table, &name, &c.dataType, &c.charset, &c.maxLength); err != nil {
			return nil, 0, interpret(err, cfg)
		}
		if table == cfg.Table { // the comparison above ignores case; table names do not
			cols[strings.ToLower(name)] = c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, interpret(err, cfg)
	}
	return newDialect(cfg, cols, charset, maxPacket), maxPacket, nil
}

// createTable is C gearmand's CREATE TABLE, byte for byte but for the
// table name: the MySQL module's (when_to_run INT), or the libdrizzle
// module's (when_to_run BIGINT).
func createTable(m Module) func(quotedTable string) string {
	whenType := "INT"
	if m == ModuleLibdrizzle {
		whenType = "BIGINT"
	}
	return func(qt string) string {
		return "CREATE TABLE " + qt + "(unique_key VARCHAR(64),function_name VARCHAR(255),priority INT," +
			"data LONGBLOB,when_to_run " + whenType + ",unique key (unique_key, function_name))"
	}
}

// newDialect is the MySQL dialect for a table whose C columns are cols
// (none: the table is absent and will be created by createTable in the
// database's character set, charset), on a server whose
// max_allowed_packet is maxPacket.
func newDialect(cfg *Config, cols map[string]column, charset string, maxPacket int64) *queuetable.Dialect {
	if len(cols) == 0 {
		cols = map[string]column{
			"unique_key":    {dataType: "varchar", charset: charset, maxLength: 64},
			"function_name": {dataType: "varchar", charset: charset, maxLength: 255},
			"when_to_run":   {dataType: "int"},
		}
		if cfg.Module == ModuleLibdrizzle {
			cols["when_to_run"] = column{dataType: "bigint"}
		}
	}
	var maxWhen int64
	switch cols["when_to_run"].dataType {
	case "int":
		maxWhen = 1<<31 - 1
	case "mediumint":
		maxWhen = 1<<23 - 1
	}
	unique, function := cols["unique_key"], cols["function_name"]
	return &queuetable.Dialect{
		Name:        "mysql",
		CreateTable: createTable(cfg.Module),
		IntegerType: "BIGINT NULL",
		BytesType:   "LONGBLOB NULL",
		Columns:     listColumns,
		Indexes:     listIndexes,
		Quote:       quote,
		// The protocol's limit on a prepared statement's placeholders.
		MaxParams: 65535,
		// A statement's blobs go as long data, each within
		// max_allowed_packet; half of it for all of a statement's rows
		// keeps the server's buffers for one statement bounded.
		MaxStatementBytes: int(max(maxPacket/2, 1<<20)),
		// No ORDER BY: InnoDB reads C's table (no primary key, so
		// clustered on a hidden, increasing row id) in the order C
		// inserted the rows, the order C gearmand replays them in. The
		// hidden row id cannot be named in an ORDER BY.
		NumberOrder: "",
		Fits: func(name, value string) bool {
			switch name {
			case "unique_key":
				return fits(unique, value)
			case "function_name":
				return fits(function, value)
			}
			return false
		},
		MaxWhenToRun: maxWhen,
		IsDuplicate: func(err error) bool {
			var me *gomysql.MySQLError
			return errors.As(err, &me) && me.Number == errDupEntry
		},
		Interpret: func(err error) error { return interpret(err, cfg) },
	}
}

// fits reports whether value, sent as utf8mb4 text as this package sends
// it, is stored byte for byte in a column of c's type: valid UTF-8, every
// character in the column's character set, within its length.
func fits(c column, value string) bool {
	if c.charset == "" && (c.dataType == "varbinary" || c.dataType == "binary" ||
		strings.HasSuffix(c.dataType, "blob")) {
		return c.maxLength == 0 || int64(len(value)) <= c.maxLength
	}
	if isASCII(value) { // the common case, in every character set
		return c.maxLength == 0 || int64(len(value)) <= c.maxLength
	}
	if !utf8.ValidString(value) {
		return false
	}
	if c.maxLength > 0 && int64(utf8.RuneCountInString(value)) > c.maxLength {
		return false
	}
	for _, r := range value {
		switch {
		case r < 0x80:
		case strings.HasPrefix(c.charset, "utf8mb4"):
		case strings.HasPrefix(c.charset, "utf8"): // utf8mb3
			if r > 0xFFFF {
				return false
			}
		case c.charset == "latin1":
			// MariaDB's latin1 is cp1252; its 0x80-0x9F differ from
			// Unicode's, so only U+00A0-U+00FF are sure to round-trip.
			if r < 0xA0 || r > 0xFF {
				return false
			}
		default: // unknown to us (and the absent table's): ASCII only
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func quote(ident string) string { return "`" + strings.ReplaceAll(ident, "`", "``") + "`" }

func listColumns(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	return listNames(ctx, tx, "SELECT TABLE_NAME, LOWER(COLUMN_NAME) FROM information_schema.COLUMNS "+
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", table)
}

func listIndexes(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	return listNames(ctx, tx, "SELECT DISTINCT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS "+
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", table)
}

// listNames runs a query of (table name, name) rows and returns the names
// of rows whose table name is table exactly (information_schema compares
// without regard to case; table names on Linux do not).
func listNames(ctx context.Context, tx *sql.Tx, query, table string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var t, name string
		if err := rows.Scan(&t, &name); err != nil {
			return nil, err
		}
		if t == table {
			names = append(names, name)
		}
	}
	return names, rows.Err()
}

// Server error numbers interpret knows.
const (
	errDBAccessDenied   = 1044 // ER_DBACCESS_DENIED_ERROR
	errAccessDenied     = 1045 // ER_ACCESS_DENIED_ERROR
	errAccessNoPassword = 1698 // ER_ACCESS_DENIED_NO_PASSWORD_ERROR: a user that may not log in this way (unix_socket)
	errBadDB            = 1049 // ER_BAD_DB_ERROR
	errServerShutdown   = 1053 // ER_SERVER_SHUTDOWN
	errDupEntry         = 1062 // ER_DUP_ENTRY
	errTooManyConns     = 1040 // ER_CON_COUNT_ERROR
	errTableFull        = 1114 // ER_RECORD_FILE_FULL
	errTableAccess      = 1142 // ER_TABLEACCESS_DENIED_ERROR
	errNoSuchTable      = 1146 // ER_NO_SUCH_TABLE
	errPacketTooLarge   = 1153 // ER_NET_PACKET_TOO_LARGE
	errLockWaitTimeout  = 1205 // ER_LOCK_WAIT_TIMEOUT
	errDeadlock         = 1213 // ER_LOCK_DEADLOCK
	errReadOnly         = 1290 // ER_OPTION_PREVENTS_STATEMENT (--read-only)
	errPacketOverflowed = 1301 // ER_WARN_ALLOWED_PACKET_OVERFLOWED
	errQueryInterrupted = 1317 // ER_QUERY_INTERRUPTED
	errReadOnlyMode     = 1836 // ER_READ_ONLY_MODE
	errConnKilled       = 1927 // ER_CONNECTION_KILLED (MariaDB)
	errOutOfResources   = 1041 // ER_OUT_OF_RESOURCES
	errDiskFull         = 1021 // ER_DISK_FULL
)

// interpret is the one place this driver's errors become store sentinels
// or messages that name the flag to fix: those of Open, and those of the
// queue table's statements through the dialect. It returns nil for nil,
// and an error it does not know prefixed with "mysql: ".
func interpret(err error, cfg *Config) error {
	if err == nil {
		return nil
	}
	where := cfg.where()
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case errAccessDenied, errAccessNoPassword:
			return fmt.Errorf("mysql: the server refused user %q with the password given (%s, %s): %w",
				cfg.User, cfg.flag("user"), cfg.flag("password"), err)
		case errDBAccessDenied, errTableAccess:
			return fmt.Errorf("mysql: user %q may not use %s (%s, %s): %w",
				cfg.User, where, cfg.flag("user"), cfg.flag("db"), err)
		case errBadDB:
			return fmt.Errorf("mysql: %s does not exist: create it, or name another with %s: %w",
				where, cfg.flag("db"), err)
		case errNoSuchTable:
			return fmt.Errorf("mysql: the queue table %s is gone from %s (%s): %w",
				cfg.Table, where, cfg.flag("table"), err)
		case errPacketTooLarge, errPacketOverflowed:
			return store.Wrap("mysql: a job is larger than the server's max_allowed_packet: "+err.Error(), store.ErrTooLarge, err)
		case errServerShutdown, errTooManyConns, errLockWaitTimeout, errDeadlock, errReadOnly, errReadOnlyMode,
			errQueryInterrupted, errConnKilled, errOutOfResources, errDiskFull, errTableFull:
			return store.Wrap("mysql: "+where+" cannot take writes now: "+err.Error(), store.ErrUnavailable, err)
		}
		return fmt.Errorf("mysql: %w", err)
	}
	var netErr net.Error
	switch {
	case errors.Is(err, errRecordTooLarge), errors.Is(err, gomysql.ErrPktTooLarge):
		return store.Wrap("mysql: a job is larger than the server's max_allowed_packet: "+err.Error(), store.ErrTooLarge, err)
	case errors.Is(err, gomysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, os.ErrNotExist),
		errors.As(err, &netErr):
		var flags string
		switch {
		case cfg.Socket != "":
			flags = cfg.flag("uds")
		case cfg.Host == "localhost":
			flags = cfg.flag("host") + " localhost is the Unix socket " + DefaultSocket + "; give 127.0.0.1 for TCP"
		default:
			flags = cfg.flag("host") + ", " + cfg.flag("port")
		}
		return store.Wrap(fmt.Sprintf("mysql: cannot reach the server for %s (%s): %v", where, flags, err),
			store.ErrUnavailable, err)
	}
	return fmt.Errorf("mysql: %w", err)
}
