# frozen_string_literal: true

require "etc"
require_relative "local_server"

# A throwaway PostgreSQL cluster on 127.0.0.1 and a free port: initdb into a temporary
# directory, postgres with fsync off, trust authentication for the user "postgres". PostgreSQL
# refuses to run as root: as root both run as the postgres user (setpriv), which owns the
# directory. Binaries: /usr/lib/postgresql/*/bin (Debian's postgresql package).
class PostgresServer < LocalServer::Server
  USER = "postgres"

  def initialize
    @postgres = LocalServer.executable("/usr/lib/postgresql/*/bin/postgres")
    unless @postgres
      raise LocalServer::Unavailable,
            "no PostgreSQL server (/usr/lib/postgresql/*/bin/postgres; Debian package postgresql, bin/setup installs it)"
    end

    @bin = File.dirname(@postgres)
    @run_as = Process.uid.zero? ? run_as_postgres : []
  end

  # Connection parameters for PG.connect.
  def params
    { host: "127.0.0.1", port: @port, user: USER, dbname: "postgres", connect_timeout: 10 }
  end

  private

  def description
    "PostgreSQL"
  end

  # As root, the directory belongs to the postgres user, who runs initdb and the server.
  def prepare
    File.chown(Etc.getpwnam(USER).uid, Etc.getpwnam(USER).gid, @dir) if Process.uid.zero?
    initdb
  end

  def command
    [*@run_as, @postgres, "-D", data, "-k", @dir, "-h", "127.0.0.1", "-p", @port.to_s, "-F",
     "-c", "max_connections=100", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
  end

  def child_env
    { "LC_ALL" => "C" }
  end

  def stop_signal
    :INT # fast shutdown: ends the sessions
  end

  def data
    File.join(@dir, "data")
  end

  def run_as_postgres
    Etc.getpwnam(USER)
    setpriv = LocalServer.executable("/usr/bin/setpriv", "/bin/setpriv")
    raise LocalServer::Unavailable, "running as root and setpriv (util-linux) is missing: PostgreSQL refuses root" unless setpriv

    [setpriv, "--reuid=#{USER}", "--regid=#{USER}", "--init-groups", "--"]
  rescue ArgumentError
    raise LocalServer::Unavailable, "running as root and there is no #{USER} user to run PostgreSQL as (it refuses root)"
  end

  def initdb
    child = LocalServer::Child.new(
      [*@run_as, File.join(@bin, "initdb"), "-D", data, "-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C", "-N"],
      log: @log, chdir: @dir, env: { "LC_ALL" => "C" }
    )
    LocalServer.wait_until("initdb", limit: 60) { !child.alive? }
    raise "initdb failed (#{child.status_text})#{LocalServer.log_tail(@log)}" unless child.success?
  end

  def ready?
    system(File.join(@bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", @port.to_s, "-t", "1")
  end
end
