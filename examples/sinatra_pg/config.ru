# frozen_string_literal: true

# rackup -s uring_machine examples/sinatra_pg/config.ru (DATABASE_URL: see app.rb)
require_relative "app"
# SinatraPg.new builds the middleware stack now: left to the first requests, it would be built
# by several fibers at once, and one of them would find a Rack constant that another is still
# autoloading (autoload locks per thread, not per fiber) missing: NameError.
run SinatraPg.new
