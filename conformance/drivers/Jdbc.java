// PostgreSQL JDBC (pgjdbc) everyday paths; one JSON line per step (see README.md).
// Compiled and cached by conformance/drivers.test.ts (javac -cp /usr/share/java/postgresql.jar).

import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.sql.*;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.*;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.copy.CopyManager;
import org.postgresql.util.PGobject;

public class Jdbc {
  static final String UNICODE = "héllo wörld — 日本語 🐘 \u00e9\u0301";
  static final byte[] BYTES = {0, 1, (byte) 0xff, 0x7f, 0x5c, 0x27};
  static final int ROWS = 200_000;
  static final String URL = "jdbc:postgresql://" + System.getenv("DRV_HOST") + ":" + System.getenv("DRV_PORT") + "/" + System.getenv("DRV_DATABASE");

  interface Step { Object run() throws Exception; }

  static Connection connect(String... extra) throws SQLException {
    Properties p = new Properties();
    p.setProperty("user", System.getenv("DRV_USER"));
    p.setProperty("password", System.getenv("DRV_PASSWORD"));
    p.setProperty("sslmode", "disable");
    for (int i = 0; i + 1 < extra.length; i += 2) p.setProperty(extra[i], extra[i + 1]);
    return DriverManager.getConnection(URL, p);
  }

  static void step(String name, Step s) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("step", name);
    try {
      out.put("value", s.run());
    } catch (Exception e) {
      String state = e instanceof SQLException ? ((SQLException) e).getSQLState() : null;
      out.put("error", (state == null ? "" : state + " ") + e.getClass().getSimpleName() + ": " + e.getMessage());
    }
    System.out.println(json(out));
    System.out.flush();
  }

  static String state(SQLException e) { return e.getSQLState(); }

  /** An ordered map (Map.of iterates in an order that changes from run to run). */
  static Map<String, Object> obj(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i + 1 < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
    return m;
  }

  // ---- a tiny JSON writer, values normalised the same way every time
  static Object norm(Object v) throws SQLException {
    if (v instanceof byte[]) {
      StringBuilder sb = new StringBuilder("\\x");
      for (byte b : (byte[]) v) sb.append(String.format("%02x", b));
      return sb.toString();
    }
    if (v instanceof BigDecimal) return ((BigDecimal) v).toPlainString();
    if (v instanceof Timestamp) return ((Timestamp) v).toInstant().toString();
    if (v instanceof java.util.Date || v instanceof UUID || v instanceof OffsetDateTime || v instanceof LocalDate) return v.toString();
    if (v instanceof PGobject) return ((PGobject) v).getType() + ":" + ((PGobject) v).getValue();
    if (v instanceof Array) return norm(((Array) v).getArray());
    if (v instanceof Object[]) {
      List<Object> l = new ArrayList<>();
      for (Object x : (Object[]) v) l.add(norm(x));
      return l;
    }
    return v;
  }

  static String json(Object v) {
    if (v == null) return "null";
    if (v instanceof String) {
      StringBuilder sb = new StringBuilder("\"");
      for (char ch : ((String) v).toCharArray()) {
        if (ch == '"' || ch == '\\') sb.append('\\').append(ch);
        else if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
        else sb.append(ch);
      }
      return sb.append('"').toString();
    }
    if (v instanceof Double && !Double.isFinite((Double) v)) return json(v.toString());  // NaN is no JSON number
    if (v instanceof Number || v instanceof Boolean) return v.toString();
    if (v instanceof Map) {
      StringJoiner j = new StringJoiner(",", "{", "}");
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) j.add(json(String.valueOf(e.getKey())) + ":" + json(e.getValue()));
      return j.toString();
    }
    if (v instanceof List) {
      StringJoiner j = new StringJoiner(",", "[", "]");
      for (Object x : (List<?>) v) j.add(json(x));
      return j.toString();
    }
    return json(v.toString());
  }

  static List<Object> rows(ResultSet rs) throws SQLException {
    List<Object> out = new ArrayList<>();
    ResultSetMetaData md = rs.getMetaData();
    while (rs.next()) {
      Map<String, Object> row = new LinkedHashMap<>();
      for (int i = 1; i <= md.getColumnCount(); i++) row.put(md.getColumnLabel(i), norm(rs.getObject(i)));
      out.add(row);
    }
    return out;
  }

  static List<Object> query(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) { return rows(rs); }
  }

  static final String TYPES_SQL = "SELECT ?::int4 AS i4, ?::int8 AS i8, ?::numeric AS num, ?::text AS txt, ?::bytea AS by, ?::bool AS b, ?::date AS d, "
      + "?::timestamptz AS ts, ?::uuid AS u, ?::json AS j, ?::jsonb AS jb, ?::int4[] AS ai, ?::text[] AS at, ?::text AS nul, ?::float8 AS f8, "
      + "?::timestamptz AS ts_odt";

  static List<Object> types(Connection c, int times) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(TYPES_SQL)) {
      List<Object> out = new ArrayList<>();
      for (int t = 0; t < times; t++) {
        ps.setInt(1, 2147483647);
        ps.setLong(2, 9007199254740993L);
        ps.setBigDecimal(3, new BigDecimal("12345678901234567890.123456789"));
        ps.setString(4, UNICODE);
        ps.setBytes(5, BYTES);
        ps.setBoolean(6, true);
        ps.setObject(7, LocalDate.of(2024, 2, 29));
        ps.setTimestamp(8, Timestamp.from(java.time.Instant.parse("2024-02-29T12:34:56.789Z")));
        ps.setObject(9, UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
        PGobject j = new PGobject();
        j.setType("json");
        j.setValue("{\"a\":[1,2,{\"b\":null}],\"ü\":\"x\"}");
        ps.setObject(10, j);
        PGobject jb = new PGobject();
        jb.setType("jsonb");
        jb.setValue("{\"a\":[1,2,{\"b\":null}],\"ü\":\"x\"}");
        ps.setObject(11, jb);
        ps.setArray(12, c.createArrayOf("int4", new Integer[] {1, 2, null, 4}));
        ps.setArray(13, c.createArrayOf("text", new String[] {"x", "y z", "\"q\"", null, UNICODE}));
        ps.setNull(14, Types.VARCHAR);
        ps.setDouble(15, 1.5e-300);
        ps.setObject(16, OffsetDateTime.of(2024, 2, 29, 12, 34, 56, 789_000_000, ZoneOffset.ofHours(2)));
        try (ResultSet rs = ps.executeQuery()) { out = rows(rs); }
      }
      return out;
    }
  }

  public static void main(String[] args) throws Exception {
    Connection c = connect();
    Connection other = connect();
    step("connect", () -> query(c, "SELECT current_user AS u, current_database() AS d"));
    step("types", () -> types(c, 1));
    // prepareThreshold=-1: server-side statements from the first execution, results in binary.
    step("types_binary", () -> {
      try (Connection b = connect("prepareThreshold", "-1", "binaryTransfer", "true")) { return types(b, 3); }
    });
    step("types_after_threshold", () -> types(c, 7));
    step("server_types", () -> query(c, "SELECT 1::int2 AS i2, 2^40::int8 AS i8, 'NaN'::numeric AS nan, interval '1 day 02:03:04' AS iv, "
        + "'{{1,2},{3,4}}'::int[] AS a2, '\\x00ff'::bytea AS by, 'infinity'::date::text AS inf, B'101' AS bits, NULL::int AS n, '{\"k\": [true]}'::jsonb AS jb"));
    step("prepared", () -> {
      List<Object> out = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT ?::int * ?::int AS sq, ?::text AS t")) {
        for (int v = 1; v <= 7; v++) {
          ps.setInt(1, v);
          ps.setInt(2, v);
          ps.setString(3, "v" + v);
          try (ResultSet rs = ps.executeQuery()) { out.add(rows(rs)); }
        }
      }
      return out;
    });
    step("prepared_error", () -> {
      List<Object> out = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT 10 / ?::int AS q")) {
        for (int v : new int[] {0, 1, 0, 2, 0, 3, 0, 4, 0, 5}) {
          ps.setInt(1, v);
          try (ResultSet rs = ps.executeQuery()) { out.add(rows(rs)); } catch (SQLException e) { out.add(state(e)); }
        }
      }
      return out;
    });
    step("savepoint", () -> {
      try (Statement st = c.createStatement()) {
        st.execute("CREATE TEMP TABLE sp (i int)");
        c.setAutoCommit(false);
        st.execute("INSERT INTO sp VALUES (1)");
        Savepoint a = c.setSavepoint("a");
        st.execute("INSERT INTO sp VALUES (2)");
        try { st.execute("SELECT 1/0"); } catch (SQLException e) { c.rollback(a); }
        st.execute("INSERT INTO sp VALUES (3)");
        c.commit();
        c.setAutoCommit(true);
      }
      return query(c, "SELECT array_agg(i ORDER BY i)::text AS a FROM sp");
    });
    step("tx_error", () -> {
      List<Object> out = new ArrayList<>();
      c.setAutoCommit(false);
      try (Statement st = c.createStatement()) {
        for (String sql : new String[] {"SELECT 1/0", "SELECT 1"}) {
          try { st.execute(sql); out.add("ok"); } catch (SQLException e) { out.add(state(e)); }
        }
      }
      c.rollback();
      c.setAutoCommit(true);
      out.add(query(c, "SELECT 2 AS after"));
      return out;
    });
    step("batch", () -> {
      try (Statement st = c.createStatement()) { st.execute("CREATE TEMP TABLE bt (i int, t text)"); }
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO bt VALUES (?, ?)")) {
        for (int i = 0; i < 2000; i++) { ps.setInt(1, i); ps.setString(2, UNICODE + i); ps.addBatch(); }
        int[] counts = ps.executeBatch();
        return obj("batches", counts.length, "rows", query(c, "SELECT count(*) AS n, sum(i) AS s FROM bt"));
      }
    });
    step("copy_in_out", () -> {
      try (Statement st = c.createStatement()) { st.execute("CREATE TEMP TABLE cp (i int, t text, b bytea)"); }
      StringBuilder src = new StringBuilder();
      for (int i = 0; i < 5000; i++) src.append(i).append('\t').append(UNICODE).append(' ').append(i).append("\t\\\\x").append(String.format("%02x", i % 256)).append('\n');
      CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
      long in = cm.copyIn("COPY cp FROM STDIN", new StringReader(src.toString()));
      StringWriter w = new StringWriter();
      long outRows = cm.copyOut("COPY (SELECT * FROM cp ORDER BY i) TO STDOUT", w);
      String bad;
      try { cm.copyIn("COPY cp FROM STDIN", new StringReader("not a number\tx\t\\N\n")); bad = "accepted"; } catch (SQLException e) { bad = state(e); }
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("in", in);
      m.put("out", outRows);
      m.put("same", w.toString().equals(src.toString()));
      m.put("bad_row", bad);
      m.put("after", query(c, "SELECT count(*) AS n FROM cp"));
      return m;
    });
    step("cursor", () -> {
      c.setAutoCommit(false);  // a fetch size opens a portal read in pieces (Execute with a row limit)
      long sum = 0;
      int n = 0;
      try (PreparedStatement ps = c.prepareStatement("SELECT g FROM generate_series(1, 2500) g")) {
        ps.setFetchSize(1000);
        try (ResultSet rs = ps.executeQuery()) { while (rs.next()) { sum += rs.getInt(1); n++; } }
      }
      try (Statement st = c.createStatement(ResultSet.TYPE_SCROLL_INSENSITIVE, ResultSet.CONCUR_READ_ONLY)) {
        st.setFetchSize(300);
        try (ResultSet rs = st.executeQuery("SELECT g FROM generate_series(1, 1000) g")) {
          rs.absolute(700);
          int at = rs.getInt(1);
          c.commit();
          c.setAutoCommit(true);
          return obj("n", n, "sum", sum, "absolute", at);
        }
      }
    });
    step("listen_notify", () -> {
      try (Statement st = c.createStatement()) { st.execute("LISTEN drv_chan"); }
      try (PreparedStatement ps = other.prepareStatement("SELECT pg_notify('drv_chan', ?)")) { ps.setString(1, UNICODE); ps.execute(); }
      PGNotification[] ns = c.unwrap(PGConnection.class).getNotifications(20_000);
      try (Statement st = c.createStatement()) { st.execute("UNLISTEN drv_chan"); }
      if (ns == null || ns.length == 0) throw new Exception("no notification");
      return obj("channel", ns[0].getName(), "payload", ns[0].getParameter());
    });
    step("big_fetch", () -> {
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT g, 'row ' || g AS t FROM generate_series(1, " + ROWS + ") g")) {
        long sum = 0;
        int n = 0;
        String last = null;
        while (rs.next()) { sum += rs.getInt(1); n++; last = rs.getString(2); }
        return obj("rows", n, "sum", sum, "last", last);
      }
    });
    step("cancel", () -> {
      int pid = (Integer) ((Map<?, ?>) query(c, "SELECT pg_backend_pid() AS p").get(0)).get("p");
      Statement st = c.createStatement();
      String[] result = new String[1];
      Thread th = new Thread(() -> {
        try { st.execute("SELECT pg_sleep(60)"); result[0] = "not cancelled"; } catch (SQLException e) { result[0] = state(e); }
      });
      th.start();
      long deadline = System.currentTimeMillis() + 20_000;
      try (PreparedStatement ps = other.prepareStatement("SELECT 1 FROM pg_stat_activity WHERE pid = ? AND wait_event = 'PgSleep'")) {
        ps.setInt(1, pid);
        while (true) {
          try (ResultSet rs = ps.executeQuery()) { if (rs.next()) break; }
          if (System.currentTimeMillis() > deadline) throw new Exception("pg_sleep never started");
          Thread.sleep(20);  // polling another session for the event
        }
      }
      st.cancel();
      th.join(30_000);
      st.close();
      return obj("code", String.valueOf(result[0]), "after", query(c, "SELECT 3 AS after"));
    });
    c.close();
    other.close();
  }
}
