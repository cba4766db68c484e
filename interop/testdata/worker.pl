#!/usr/bin/perl
# worker.pl HOST:PORT RECORD-FILE
#
# A Gearman::Worker that serves, until it is killed:
#   perl.reverse   answers with its argument reversed
#   perl.record    appends its argument and a newline to RECORD-FILE and
#                  answers "recorded"
#   perl.progress  sends WORK_STATUS 1/2 and WORK_DATA "chunk", then answers
#                  "done"
#   perl.fail      fails the job (WORK_FAIL)
#   perl.echo      answers with its argument; for "" or "0", false in Perl,
#                  Gearman::Worker sends WORK_COMPLETE as the handle alone
#   perl.quiet     sends WORK_DATA "", WORK_DATA "0" and WORK_WARNING "0"
#                  (each the handle alone), then answers "0"
#   perl.except    sends WORK_EXCEPTION "0" (the handle alone)
use strict;
use warnings;
use Gearman::Worker;

my ($server, $record) = @ARGV;
die "usage: worker.pl HOST:PORT RECORD-FILE\n" unless defined $record;

my $worker = Gearman::Worker->new(job_servers => [$server]);

$worker->register_function('perl.reverse' => sub {
    return scalar reverse $_[0]->arg;
});

$worker->register_function('perl.record' => sub {
    open my $fh, '>>', $record or die "open $record: $!\n";
    print $fh $_[0]->arg, "\n";
    close $fh or die "close $record: $!\n";
    return 'recorded';
});

$worker->register_function('perl.progress' => sub {
    my $job = shift;
    $job->set_status(1, 2);
    $worker->send_work_data($job, 'chunk');
    return 'done';
});

$worker->register_function('perl.fail' => sub {
    return undef;
});

$worker->register_function('perl.echo' => sub {
    return $_[0]->arg;
});

$worker->register_function('perl.quiet' => sub {
    my $job = shift;
    $worker->send_work_data($job, '');
    $worker->send_work_data($job, '0');
    $worker->send_work_warning($job, '0');
    return '0';
});

$worker->register_function('perl.except' => sub {
    $worker->send_work_exception($_[0], '0');
    return;
});

$worker->work(stop_if => sub { 0 });
