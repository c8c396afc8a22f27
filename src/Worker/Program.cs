using GpuFleet.Worker.Cli;

return await WorkerCommandLine.RunAsync(args);
