# frozen_string_literal: true

require "etc"
require_relative "local_server"

# A throwaway PostgreSQL cluster on 127.0.0.1 and a free port: initdb into a temporary
# directory, postgres with fsync off, trust authentication for the user "postgres". PostgreSQL
# refuses to run as root: as root both run as the postgres user (setpriv), which owns the
# directory. Binaries: /usr/lib/postgresql/*/bin (Debian's postgresql package).
class PostgresServer
  USER = "postgres"

  attr_reader :port

  def self.start
    new.tap(&:start)
  end

  def initialize
    @postgres = LocalServer.executable("/usr/lib/postgresql/*/bin/postgres")
    unless @postgres
      raise LocalServer::Unavailable,
            "no PostgreSQL server (/usr/lib/postgresql/*/bin/postgres; Debian package postgresql, bin/setup installs it)"
    end

    @bin = File.dirname(@postgres)
    @run_as = Process.uid.zero? ? run_as_postgres : []
  end

  def start
    @dir = Dir.mktmpdir("um-postgres-")
    File.chown(Etc.getpwnam(USER).uid, Etc.getpwnam(USER).gid, @dir) if Process.uid.zero?
    @log = File.join(@dir, "server.log")
    initdb
    @port = LocalServer.free_port
    @server = LocalServer::Child.new(
      [*@run_as, @postgres, "-D", data, "-k", @dir, "-h", "127.0.0.1", "-p", @port.to_s, "-F",
       "-c", "max_connections=100", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
      log: @log, chdir: @dir, env: { "LC_ALL" => "C" }
    )
    LocalServer.wait_until("PostgreSQL on port #{@port}", process: @server, log: @log) { ready? }
    self
  rescue StandardError
    stop
    raise
  end

  # Connection parameters for PG.connect.
  def params
    { host: "127.0.0.1", port: @port, user: USER, dbname: "postgres", connect_timeout: 10 }
  end

  def stop
    @server&.stop(:INT) # fast shutdown: ends the sessions
    @server = nil
    FileUtils.rm_rf(@dir) if @dir
    @dir = nil
  end

  private

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
