#pragma once
// A thin RAII layer over libsqlite3: a connection and prepared statements
// with bound parameters only (no SQL is ever built from data). Errors come
// back as values with SQLite's message.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include <boost/system/result.hpp>

namespace tinyfaas::async_calls {

template <class T>
using SqlResult = boost::system::result<T, std::string>;

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* statement) : db_(db), statement_(statement) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Parameters count from 1, as in SQL's ?1.
  Statement& bind(int index, std::int64_t value);
  Statement& bindText(int index, std::string_view value);
  Statement& bindBlob(int index, std::string_view value);
  // True with a row to read, false once done.
  SqlResult<bool> step();
  // Runs to completion (a statement without rows).
  SqlResult<void> run();

  std::int64_t integer(int column) const;
  std::string text(int column) const;  // TEXT and BLOB alike
  bool isNull(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* statement_;
};

// One connection; like SQLite's own, used by one thread at a time.
class Database {
 public:
  static SqlResult<Database> open(const std::filesystem::path& file);
  Database(Database&& other) noexcept;
  Database& operator=(Database&&) = delete;
  ~Database();

  SqlResult<Statement> prepare(std::string_view sql);
  // Statements without parameters or rows (schema, pragmas, BEGIN/COMMIT).
  SqlResult<void> exec(const char* sql);
  // Rows the last INSERT, UPDATE or DELETE changed.
  std::int64_t changes() const;
  // False after COMMIT or ROLLBACK, and after an error (a full disk) made
  // SQLite roll the open transaction back by itself.
  bool inTransaction() const;

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// BEGIN IMMEDIATE now, ROLLBACK when it goes without commit().
class Transaction {
 public:
  static SqlResult<Transaction> begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  SqlResult<void> commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace tinyfaas::async_calls
