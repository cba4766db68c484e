#!/usr/bin/perl
# client.pl HOST:PORT COMMAND ARGS...
#
# Drives a Gearman::Client and prints what it saw:
#   do FUNC ARG [PRIORITY]  do_task; prints the result, or "FAILED" and exits 1
#   bg FUNC ARG UNIQ        dispatch_background; prints the handle
#   status HANDLE           get_status; prints "KNOWN RUNNING"
#   events FUNC ARG         do_task; prints one line per status, data and
#                           completion callback, in the order they came
use strict;
use warnings;
use Gearman::Client;

my ($server, $command, @args) = @ARGV;
die "usage: client.pl HOST:PORT do|bg|status|events ARGS...\n" unless defined $command;

my $client = Gearman::Client->new(job_servers => [$server]);
$| = 1;

if ($command eq 'do') {
    my ($func, $arg, $priority) = @args;
    my $result = $client->do_task($func => $arg, { priority => $priority || 'normal' });
    if (!defined $result) {
        print "FAILED\n";
        exit 1;
    }
    print $$result;
}
elsif ($command eq 'bg') {
    my ($func, $arg, $uniq) = @args;
    my $handle = $client->dispatch_background($func => $arg, { uniq => $uniq });
    defined $handle or die "dispatch_background $func failed\n";
    print $handle;
}
elsif ($command eq 'status') {
    my $status = $client->get_status($args[0]);
    defined $status or die "get_status $args[0] failed\n";
    printf "%d %d", $status->known ? 1 : 0, $status->running ? 1 : 0;
}
elsif ($command eq 'events') {
    my ($func, $arg) = @args;
    $client->do_task($func => $arg, {
        on_status   => sub { print "status $_[0]/$_[1]\n" },
        on_data     => sub { print "data ${ $_[0] }\n" },
        on_complete => sub { print "complete ${ $_[0] }\n" },
        on_fail     => sub { print "fail\n" },
    });
}
else {
    die "unknown command $command\n";
}
