# frozen_string_literal: true

# A crawler: fetches URLS pages with Net::HTTP, at most LIMIT at a time (a group and a
# semaphore), from a small HTTP server that this program starts itself on 127.0.0.1, so that it
# runs offline and ends by itself.
#
#   ruby -Ilib examples/crawler.rb [URLS] [LIMIT]

require "uring_machine"
require "net/http"

urls_count = Integer(ARGV.fetch(0, 1000))
limit = Integer(ARGV.fetch(1, 50))

# Answers each GET /page/N with "page N", one request per connection.
def serve(client)
  path = client.gets.to_s.split[1]
  nil while (line = client.gets) && line != "\r\n" # the headers
  body = "page #{path.to_s.split('/').last}"
  client.write("HTTP/1.1 200 OK\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
rescue SystemCallError, IOError
  nil # a client that went away costs only its own connection
ensure
  client.close
end

UringMachine.run do
  server = TCPServer.new("127.0.0.1", 0)
  UringMachine.spin { loop { UringMachine.spin(server.accept) { |client| serve(client) } } }
  urls = Array.new(urls_count) { |i| "http://127.0.0.1:#{server.local_address.ip_port}/page/#{i}" }

  inside = most = 0
  semaphore = UringMachine::Semaphore.new(limit)
  pages = UringMachine.group do |group|
    urls.each do |url|
      group.spin do
        semaphore.acquire do
          most = [most, inside += 1].max
          Net::HTTP.get(URI(url)).tap { inside -= 1 }
        end
      end
    end
  end

  in_order = pages.each_with_index.all? { |page, i| page == "page #{i}" }
  puts "fetched #{pages.size} pages, at most #{most} at a time, in order: #{in_order}"
end # the server's fibers are stopped as run ends
